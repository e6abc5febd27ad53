//! Each question's answer in one sentence, and the bars of its chart, both read from the same
//! [`Answer`] rows the table shows.

use crate::db::report::Answer;

/// One bar of a chart: its label, its value and whether it is the most / fewest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// The group the bar belongs to (`East` / `West` for question 5), if any.
    pub group: Option<String>,
    pub label: String,
    pub value: i64,
    pub mark: Mark,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Plain,
    Most,
    Fewest,
}

fn cell(answer: &Answer, row: &[Option<String>], column: &str) -> Option<String> {
    let i = answer.columns.iter().position(|c| c == column)?;
    row.get(i).cloned().flatten()
}

fn number(answer: &Answer, row: &[Option<String>], column: &str) -> i64 {
    cell(answer, row, column).and_then(|v| v.parse::<f64>().ok()).map_or(0, |v| v.round() as i64)
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn reviews(n: i64) -> String {
    if n == 1 {
        "1 review".to_string()
    } else {
        format!("{n} reviews")
    }
}

/// The bars of the answer's chart (the `Total` row left out: it is not a category).
pub fn bars(answer: &Answer) -> Vec<Bar> {
    let label_column = ["location", "device"].into_iter().find(|c| answer.columns.iter().any(|x| x == c));
    let Some(label_column) = label_column else { return Vec::new() };
    let mut bars: Vec<Bar> = answer
        .rows
        .iter()
        .filter(|row| cell(answer, row, label_column).as_deref() != Some("Total"))
        .map(|row| Bar {
            group: cell(answer, row, "side").or_else(|| cell(answer, row, "rank")),
            label: cell(answer, row, label_column).unwrap_or_else(|| "NULL".to_string()),
            value: number(answer, row, "reviews"),
            mark: match cell(answer, row, "rank").as_deref() {
                Some("most") => Mark::Most,
                Some("fewest") => Mark::Fewest,
                _ => Mark::Plain,
            },
        })
        .collect();
    // Question 4 marks its rows itself; elsewhere the highest and lowest bars are marked
    // (within each side for question 5: every bar there is its side's most used device).
    let marked_by_rank = answer.columns.iter().any(|c| c == "rank");
    let grouped = answer.columns.iter().any(|c| c == "side");
    if grouped {
        for bar in &mut bars {
            bar.mark = Mark::Most;
        }
    } else if !marked_by_rank && bars.len() > 1 {
        let max = bars.iter().map(|b| b.value).max().unwrap_or(0);
        let min = bars.iter().map(|b| b.value).min().unwrap_or(0);
        if max != min {
            for bar in &mut bars {
                bar.mark = if bar.value == max {
                    Mark::Most
                } else if bar.value == min {
                    Mark::Fewest
                } else {
                    Mark::Plain
                };
            }
        }
    }
    bars
}

/// The answer in one sentence, from its rows.
pub fn sentence(answer: &Answer) -> String {
    let rows = &answer.rows;
    let named = |column: &str| -> Vec<(String, i64)> {
        rows.iter()
            .filter(|r| cell(answer, r, column).as_deref() != Some("Total"))
            .map(|r| (cell(answer, r, column).unwrap_or_else(|| "NULL".into()), number(answer, r, "reviews")))
            .collect()
    };
    let total = rows
        .iter()
        .find(|r| cell(answer, r, answer.columns.first().map_or("", String::as_str)).as_deref() == Some("Total"));
    let total = total.map(|r| number(answer, r, "reviews"));
    match answer.name.as_str() {
        "q1_reviews_in_ca_ny_tx" => {
            let parts: Vec<String> = named("location").into_iter().map(|(l, n)| format!("{l} {n}")).collect();
            format!("{} in California, New York and Texas together: {}.", reviews(total.unwrap_or(0)), list(&parts))
        }
        "q2_apple_devices_in_ca_ny_tx" => {
            let parts: Vec<String> = named("device").into_iter().map(|(d, n)| format!("{d} {n}")).collect();
            match total.unwrap_or(0) {
                0 => "None of the reviews in those three states was written with an Apple device.".to_string(),
                n => {
                    format!("{} in those three states were written with an Apple device: {}.", reviews(n), list(&parts))
                }
            }
        }
        "q3_location_most_computer_chrome" => {
            let found = named("location");
            match found.first() {
                None => "No review was written from a computer in a Chrome browser.".to_string(),
                Some((_, n)) => {
                    let names: Vec<String> = found.iter().map(|(l, _)| l.clone()).collect();
                    let verb = if names.len() > 1 { "have" } else { "has" };
                    let each = if names.len() > 1 { " each" } else { "" };
                    format!(
                        "{} {verb} the most reviews from a computer in Chrome: {}{each}.",
                        list(&names),
                        reviews(*n)
                    )
                }
            }
        }
        "q4_states_most_fewest_2021" => {
            let pick = |rank: &str| -> Option<(Vec<String>, i64)> {
                let hits: Vec<&Vec<Option<String>>> =
                    rows.iter().filter(|r| cell(answer, r, "rank").as_deref() == Some(rank)).collect();
                let n = number(answer, hits.first()?, "reviews");
                Some((hits.iter().map(|r| cell(answer, r, "location").unwrap_or_default()).collect(), n))
            };
            match (pick("most"), pick("fewest")) {
                (Some((most, m)), Some((fewest, f))) => format!(
                    "In 2021 the most reviews came from {} ({}), the fewest from {} ({}).",
                    list(&most),
                    reviews(m),
                    list(&fewest),
                    reviews(f)
                ),
                _ => "No state has reviews in 2021.".to_string(),
            }
        }
        "q5_most_used_device_east_west" => {
            let side = |name: &str| -> String {
                let hits: Vec<&Vec<Option<String>>> =
                    rows.iter().filter(|r| cell(answer, r, "side").as_deref() == Some(name)).collect();
                match hits.first() {
                    None => format!("no review in the {}", name.to_lowercase()),
                    Some(first) => {
                        let devices: Vec<String> =
                            hits.iter().map(|r| cell(answer, r, "device").unwrap_or_default()).collect();
                        format!(
                            "{} in the {} ({})",
                            list(&devices),
                            name.to_lowercase(),
                            reviews(number(answer, first, "reviews"))
                        )
                    }
                }
            };
            format!("Most used to write reviews: {}; {}.", side("East"), side("West"))
        }
        _ => format!("{} row(s).", rows.len()),
    }
}
