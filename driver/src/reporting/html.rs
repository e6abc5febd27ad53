//! The report as one self-contained HTML page: inline CSS, inline SVG charts drawn here, no
//! script, no font, image or style sheet from anywhere else, so it opens offline and from an
//! e-mail attachment. Every value from the data goes through [`esc`].

use std::fmt::Write as _;

use super::words::{bars, sentence, Bar, Mark};
use super::{format_age, ReportData, SourceHistory};
use crate::db::report::{Answer, QUESTIONS};

/// Where the links to the rejects point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectsLinks {
    /// Relative to the page: the page is `s3://<staging>/reports/dt=D/report.html`, so the
    /// staging root is `../../`.
    BesideManifest,
    /// An absolute base for the staging root (e.g. `file:///.../movie-analytics-dev-staging/`).
    Base(String),
    /// No link, the URI as text only.
    None,
}

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
:root { --ink:#1d2733; --muted:#5b6775; --line:#d8dee6; --bg:#f5f7fa; --card:#fff;
  --bar:#7d9cc0; --most:#1f5fa8; --fewest:#d9822b; --out:#4b9a6a; --rej:#c8423b; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  color:var(--ink); background:var(--bg); overflow-wrap: anywhere; }
main { max-width: 1100px; margin: 0 auto; padding: 16px; }
header h1 { font-size: 1.5rem; margin: 8px 0 4px; }
.sub { color: var(--muted); margin: 0 0 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 14px 0;
  break-inside: avoid; page-break-inside: avoid; }
.card h2 { font-size: 1.1rem; margin: 0 0 6px; }
.answer { font-size: 1.05rem; font-weight: 600; margin: 4px 0 10px; }
.grid { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 16px; align-items: start; }
.groups { display: flex; flex-wrap: wrap; gap: 12px; }
.groups > figure { flex: 1 1 220px; margin: 0; }
figure { margin: 0; }
figcaption { font-size: .85rem; color: var(--muted); margin-bottom: 2px; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 12px system-ui, sans-serif; fill: var(--ink); }
.bar { fill: var(--bar); } .bar.most { fill: var(--most); } .bar.fewest { fill: var(--fewest); }
.seg-out { fill: var(--out); } .seg-rej { fill: var(--rej); }
.legend { font-size: .8rem; color: var(--muted); }
.legend span::before { content: ""; display: inline-block; width: .8em; height: .8em; margin: 0 .3em 0 .6em;
  vertical-align: -1px; background: var(--c); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f0f3f7; border: 1px solid var(--line); border-radius: 6px; padding: 8px; overflow: auto;
  max-height: 16em; font-size: .8rem; white-space: pre; }
details summary { cursor: pointer; color: var(--muted); font-size: .85rem; }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 8px 16px; margin: 0; }
.facts dt { color: var(--muted); font-size: .8rem; } .facts dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.warn { border-left: 4px solid var(--rej); padding-left: 8px; }
.ok { color: var(--out); }
code { overflow-wrap: anywhere; }
@media (max-width: 720px) {
  main { padding: 8px; }
  .grid { grid-template-columns: minmax(0, 1fr); }
  header h1 { font-size: 1.25rem; }
}
@media print {
  body { background: #fff; font-size: 11pt; }
  main { max-width: none; padding: 0; }
  .card { border: none; border-top: 1px solid #999; border-radius: 0; margin: 8px 0; padding: 8px 0; }
  pre { max-height: none; overflow: visible; white-space: pre-wrap; }
  details > *:not(summary) { display: block; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// The whole page.
pub fn render(data: &ReportData, links: &RejectsLinks) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <title>Movie analytics report</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
    );
    let latest = data.freshness.latest_run_date.map(|d| d.to_string()).unwrap_or_else(|| "none".into());
    let _ = write!(
        out,
        "<header><h1>Movie analytics: the five questions</h1>\n<p class=\"sub\">fact_movie_analytics in {} · latest run date {} · generated {}</p></header>\n",
        esc(&data.warehouse),
        esc(&latest),
        esc(&data.generated_at.format("%Y-%m-%d %H:%M UTC").to_string())
    );
    freshness_section(&mut out, data);
    for (i, answer) in data.answers.iter().enumerate() {
        question_section(&mut out, i + 1, answer);
    }
    quality_section(&mut out, data, links);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn freshness_section(out: &mut String, data: &ReportData) {
    let f = &data.freshness;
    out.push_str("<section class=\"card\" id=\"freshness\">\n<h2>Data freshness</h2>\n<dl class=\"facts\">\n");
    let fact = |out: &mut String, label: &str, value: &str, id: &str| {
        let _ = writeln!(out, "<div><dt>{}</dt><dd id=\"{id}\">{}</dd></div>", esc(label), esc(value));
    };
    let none = "-".to_string();
    fact(
        out,
        "latest run date loaded",
        &f.latest_run_date.map(|d| d.to_string()).unwrap_or(none.clone()),
        "latest-run-date",
    );
    fact(out, "its run id", f.run_id.as_deref().unwrap_or("no succeeded run manifest"), "latest-run-id");
    fact(
        out,
        "finished",
        &f.finished_at.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or(none.clone()),
        "latest-finished",
    );
    fact(out, "age", &f.age_seconds.map(format_age).unwrap_or(none), "latest-age");
    fact(out, "fact rows of that date", &f.fact_rows.to_string(), "latest-fact-rows");
    fact(out, "reviews of that date", &f.reviews.to_string(), "latest-reviews");
    out.push_str("</dl>\n");
    if let Some((run_id, date, state, error)) = &f.latest_failure {
        let _ = writeln!(
            out,
            "<p class=\"warn\" id=\"latest-failure\">The newest run, {} for {}, ended {}{}. The answers below are from the data loaded before it.</p>",
            esc(run_id),
            esc(date),
            esc(state),
            error.as_ref().map(|e| format!(": {}", esc(e))).unwrap_or_default()
        );
    }
    out.push_str("</section>\n");
}

fn question_section(out: &mut String, number: usize, answer: &Answer) {
    let sql = QUESTIONS.iter().find(|(name, _, _)| *name == answer.name).map_or("", |(_, _, sql)| sql);
    let _ = writeln!(
        out,
        "<section class=\"card question\" id=\"{}\">\n<h2>{number}. {}</h2>\n<p class=\"answer\">{}</p>\n<div class=\"grid\">",
        esc(&answer.name),
        esc(&answer.question),
        esc(&sentence(answer))
    );
    chart(out, &bars(answer));
    out.push_str("<div class=\"scroll\">");
    table(out, answer);
    out.push_str("</div>\n</div>\n");
    let _ = writeln!(
        out,
        "<details><summary>The SQL that answered it (sql/questions/{}.sql)</summary><pre><code>{}</code></pre></details>\n</section>",
        esc(&answer.name),
        esc(sql.trim_end())
    );
}

fn is_numeric_column(answer: &Answer, i: usize) -> bool {
    !answer.rows.is_empty()
        && answer.rows.iter().all(|r| r.get(i).cloned().flatten().is_some_and(|v| v.parse::<f64>().is_ok()))
}

fn table(out: &mut String, answer: &Answer) {
    out.push_str("<table><thead><tr>");
    let numeric: Vec<bool> = (0..answer.columns.len()).map(|i| is_numeric_column(answer, i)).collect();
    for (i, column) in answer.columns.iter().enumerate() {
        let class = if numeric[i] { " class=\"num\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", esc(column));
    }
    out.push_str("</tr></thead><tbody>");
    if answer.rows.is_empty() {
        let _ = write!(out, "<tr><td colspan=\"{}\">(no rows)</td></tr>", answer.columns.len().max(1));
    }
    for row in &answer.rows {
        out.push_str("<tr>");
        for (i, value) in row.iter().enumerate() {
            let class = if numeric.get(i).copied().unwrap_or(false) { " class=\"num\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", esc(value.as_deref().unwrap_or("NULL")));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// Horizontal bars; bars with a group (East / West, most / fewest) are drawn as one small
/// chart per group, side by side.
fn chart(out: &mut String, bars: &[Bar]) {
    if bars.is_empty() {
        out.push_str("<figure class=\"chart\"><figcaption>nothing to chart</figcaption></figure>");
        return;
    }
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let mut groups: Vec<(Option<String>, Vec<&Bar>)> = Vec::new();
    for bar in bars {
        match groups.iter_mut().find(|(g, _)| *g == bar.group) {
            Some((_, members)) => members.push(bar),
            None => groups.push((bar.group.clone(), vec![bar])),
        }
    }
    out.push_str("<div class=\"chart\"><div class=\"groups\">");
    for (group, members) in &groups {
        out.push_str("<figure>");
        if let Some(group) = group {
            let _ = write!(out, "<figcaption>{}</figcaption>", esc(group));
        }
        bar_svg(out, members, max);
        out.push_str("</figure>");
    }
    out.push_str("</div><p class=\"legend\"><span style=\"--c:var(--most)\">most</span><span style=\"--c:var(--fewest)\">fewest</span><span style=\"--c:var(--bar)\">other</span></p></div>");
}

fn bar_svg(out: &mut String, bars: &[&Bar], max: i64) {
    const ROW: i64 = 26;
    const LABEL: i64 = 130;
    const WIDTH: i64 = 420;
    let height = ROW * bars.len() as i64 + 4;
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {} {height}\" role=\"img\" aria-label=\"bar chart\" xmlns=\"http://www.w3.org/2000/svg\">",
        LABEL + WIDTH + 70
    );
    for (i, bar) in bars.iter().enumerate() {
        let y = i as i64 * ROW + 2;
        let length = if bar.value <= 0 { 0 } else { (bar.value * WIDTH / max).max(2) };
        let class = match bar.mark {
            Mark::Most => "bar most",
            Mark::Fewest => "bar fewest",
            Mark::Plain => "bar",
        };
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect class=\"{class}\" x=\"{LABEL}\" y=\"{y}\" width=\"{length}\" height=\"{}\" data-label=\"{}\" data-value=\"{}\"><title>{}: {}</title></rect><text x=\"{}\" y=\"{}\">{}</text>",
            LABEL - 6,
            y + 16,
            esc(&truncate(&bar.label, 20)),
            ROW - 8,
            esc(&bar.label),
            bar.value,
            esc(&bar.label),
            bar.value,
            LABEL + length + 6,
            y + 16,
            bar.value
        );
    }
    out.push_str("</svg>");
}

fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(chars - 1).collect::<String>())
    }
}

fn quality_section(out: &mut String, data: &ReportData, links: &RejectsLinks) {
    out.push_str("<section class=\"card\" id=\"quality\">\n<h2>Data quality per source (last runs)</h2>\n");
    out.push_str("<p class=\"sub\">Rows read, rows kept and rows rejected (with the reason) by each run; every rejected record is kept with its raw content under rejects/.</p>\n");
    if data.quality.is_empty() {
        out.push_str("<p>No run manifest with source counts was found under _runs/.</p>\n");
    }
    for history in &data.quality {
        source_block(out, history, &data.staging_bucket, links);
    }
    if !data.unreadable_manifests.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"warn\">{} manifest(s) under _runs/ could not be read:</p><ul>",
            data.unreadable_manifests.len()
        );
        for name in &data.unreadable_manifests {
            let _ = writeln!(out, "<li><code>{}</code></li>", esc(name));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

fn source_block(out: &mut String, history: &SourceHistory, staging: &str, links: &RejectsLinks) {
    let _ = writeln!(out, "<h3 id=\"source-{}\">{}</h3>", esc(&history.source), esc(&history.source));
    // Stacked bars: kept (green) + rejected (red) = rows in, one per run.
    const ROW: i64 = 22;
    const LABEL: i64 = 100;
    const WIDTH: i64 = 380;
    let max = history.runs.iter().map(|r| r.counts.rows_in as i64).max().unwrap_or(0).max(1);
    let height = ROW * history.runs.len() as i64 + 4;
    let _ = write!(
        out,
        "<div class=\"grid\"><figure><svg viewBox=\"0 0 {} {height}\" role=\"img\" aria-label=\"rows kept and rejected per run\" xmlns=\"http://www.w3.org/2000/svg\">",
        LABEL + WIDTH + 110
    );
    for (i, run) in history.runs.iter().enumerate() {
        let y = i as i64 * ROW + 2;
        let kept = run.counts.rows_out as i64 * WIDTH / max;
        let rejected =
            if run.counts.rows_rejected > 0 { (run.counts.rows_rejected as i64 * WIDTH / max).max(2) } else { 0 };
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect class=\"seg-out\" x=\"{LABEL}\" y=\"{y}\" width=\"{kept}\" height=\"{}\"><title>kept {}</title></rect><rect class=\"seg-rej\" x=\"{}\" y=\"{y}\" width=\"{rejected}\" height=\"{}\"><title>rejected {}</title></rect><text x=\"{}\" y=\"{}\">{} rejected</text>",
            LABEL - 6,
            y + 14,
            esc(&run.run_date),
            ROW - 6,
            run.counts.rows_out,
            LABEL + kept,
            ROW - 6,
            run.counts.rows_rejected,
            LABEL + kept + rejected + 6,
            y + 14,
            run.counts.rows_rejected
        );
    }
    out.push_str("</svg><p class=\"legend\"><span style=\"--c:var(--out)\">kept</span><span style=\"--c:var(--rej)\">rejected</span></p></figure>");
    out.push_str("<div class=\"scroll\"><table><thead><tr><th>run date</th><th class=\"num\">rows in</th><th class=\"num\">rows out</th><th class=\"num\">rejected</th><th>by reason</th><th>rejects</th></tr></thead><tbody>");
    for run in &history.runs {
        let reasons: Vec<String> =
            run.counts.rejected_by_reason.iter().map(|(r, n)| format!("{} {n}", esc(r))).collect();
        // Each run's rejects are in its own folder (docs/architecture.md, "Lake layout").
        let key = format!("rejects/{}/dt={}/run={}/", history.source, run.run_date, run.run_id);
        let uri = format!("s3://{staging}/{key}");
        let link = match links {
            RejectsLinks::BesideManifest => format!("<a href=\"../../{}\">{}</a>", esc(&key), esc(&uri)),
            RejectsLinks::Base(base) => format!("<a href=\"{}{}\">{}</a>", esc(base), esc(&key), esc(&uri)),
            RejectsLinks::None => format!("<code>{}</code>", esc(&uri)),
        };
        let _ = write!(
            out,
            "<tr title=\"run {}\"><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{link}</td></tr>",
            esc(&run.run_id),
            esc(&run.run_date),
            run.counts.rows_in,
            run.counts.rows_out,
            run.counts.rows_rejected,
            if reasons.is_empty() { "-".to_string() } else { reasons.join(", ") }
        );
    }
    out.push_str("</tbody></table></div></div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::SourceCounts;
    use crate::reporting::{Freshness, SourceRun};
    use chrono::TimeZone;

    fn answer(name: &str, columns: &[&str], rows: &[&[&str]]) -> Answer {
        Answer {
            name: name.to_string(),
            question: QUESTIONS.iter().find(|q| q.0 == name).unwrap().1.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows.iter().map(|r| r.iter().map(|v| Some(v.to_string())).collect()).collect(),
        }
    }

    fn data(answers: Vec<Answer>) -> ReportData {
        let now = chrono::Utc.with_ymd_and_hms(2021, 11, 1, 6, 0, 0).unwrap();
        ReportData {
            generated_at: now,
            warehouse: "the embedded SQLite warehouse .lake/warehouse/movie_analytics.sqlite".into(),
            answers,
            loaded: vec![],
            freshness: Freshness {
                latest_run_date: "2021-10-31".parse().ok(),
                fact_rows: 12,
                reviews: 40,
                run_id: Some("2021-10-31-abc".into()),
                finished_at: Some(now - chrono::Duration::hours(3)),
                age_seconds: Some(3 * 3600),
                latest_failure: None,
            },
            quality: vec![SourceHistory {
                source: "log_reviews".into(),
                runs: vec![SourceRun {
                    run_date: "2021-10-31".into(),
                    run_id: "2021-10-31-abc".into(),
                    counts: SourceCounts {
                        rows_in: 10,
                        rows_out: 7,
                        rows_rejected: 3,
                        rejected_by_reason: [("bad_xml".to_string(), 1), ("bad_date".to_string(), 2)].into(),
                    },
                }],
            }],
            unreadable_manifests: vec![],
            staging_bucket: "movie-staging".into(),
        }
    }

    fn five() -> Vec<Answer> {
        vec![
            answer(
                "q1_reviews_in_ca_ny_tx",
                &["location", "reviews"],
                &[&["California", "12"], &["New York", "8"], &["Texas", "5"], &["Total", "25"]],
            ),
            answer("q2_apple_devices_in_ca_ny_tx", &["device", "reviews"], &[&["Mobile", "3"], &["Total", "3"]]),
            answer("q3_location_most_computer_chrome", &["location", "reviews"], &[&["Ohio", "7"], &["Texas", "7"]]),
            answer(
                "q4_states_most_fewest_2021",
                &["rank", "location", "reviews"],
                &[&["most", "California", "20"], &["fewest", "Wyoming", "0"]],
            ),
            answer(
                "q5_most_used_device_east_west",
                &["side", "device", "reviews"],
                &[&["East", "Mobile", "40"], &["West", "Computer", "12"]],
            ),
        ]
    }

    #[test]
    fn a_hostile_value_is_text_never_html() {
        let hostile = "<script>alert('x')</script>&\"Kansas\"";
        let mut answers = five();
        answers[0].rows[0][0] = Some(hostile.to_string());
        let mut d = data(answers);
        d.quality[0].source = "<img src=x onerror=alert(1)>".into();
        d.freshness.latest_failure =
            Some(("r<1>".into(), "2021-11-01".into(), "failed".into(), Some("<b>boom</b>".into())));
        let page = render(&d, &RejectsLinks::BesideManifest);
        assert!(!page.contains("<script"), "a script tag got through");
        assert!(!page.contains("<img"), "an img tag got through");
        assert!(!page.contains("<b>boom"), "markup in an error got through");
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;Kansas&quot;"), "{page}");
        // Nothing the page loads comes from elsewhere (checked on a page of ordinary values:
        // the hostile ones above hold `src=` as text).
        let page = render(&data(five()), &RejectsLinks::BesideManifest);
        for needle in ["http://", "https://", "<link", "@import", "url(", "<script", "src="] {
            let outside_svg_ns = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
            assert!(!outside_svg_ns.contains(needle), "the page references `{needle}`");
        }
    }

    #[test]
    fn the_numbers_in_the_page_are_the_query_results() {
        let answers = five();
        let page = render(&data(answers.clone()), &RejectsLinks::None);
        let data_value = regex::Regex::new(r#"data-value="(-?\d+)""#).unwrap();
        for answer in &answers {
            let section =
                page.split(&format!("id=\"{}\"", answer.name)).nth(1).unwrap().split("</section>").next().unwrap();
            // The table shows every value of every row.
            for row in &answer.rows {
                let cells: String = row
                    .iter()
                    .map(|v| {
                        format!(
                            "<td{}>{}</td>",
                            if v.as_deref().unwrap().parse::<f64>().is_ok() { " class=\"num\"" } else { "" },
                            esc(v.as_deref().unwrap())
                        )
                    })
                    .collect();
                assert!(section.contains(&format!("<tr>{cells}</tr>")), "{}: row {row:?} missing", answer.name);
            }
            // Each bar carries the value of its row (Total is not a bar).
            let chart_values: Vec<i64> = data_value.captures_iter(section).map(|c| c[1].parse().unwrap()).collect();
            let expected: Vec<i64> = answer
                .rows
                .iter()
                .filter(|r| !r.iter().any(|v| v.as_deref() == Some("Total")))
                .map(|r| r.last().unwrap().as_deref().unwrap().parse().unwrap())
                .collect();
            assert_eq!(chart_values, expected, "{}", answer.name);
        }
        assert!(page
            .contains("25 reviews in California, New York and Texas together: California 12, New York 8 and Texas 5."));
        assert!(page.contains("Ohio and Texas have the most reviews from a computer in Chrome: 7 reviews each."));
        assert!(page.contains("Mobile in the east (40 reviews); Computer in the west (12 reviews)"));
        assert!(page.contains(
            "In 2021 the most reviews came from California (20 reviews), the fewest from Wyoming (0 reviews)."
        ));
        // Most / fewest are highlighted.
        let q1 = page.split("id=\"q1_reviews_in_ca_ny_tx\"").nth(1).unwrap();
        assert!(
            q1.contains("class=\"bar most\" x=\"130\" y=\"2\" width=\"420\""),
            "California is the longest, marked most"
        );
        assert!(q1.contains("class=\"bar fewest\""));
        // Freshness and quality come from the data too.
        assert!(page.contains("<dd id=\"latest-run-id\">2021-10-31-abc</dd>"));
        assert!(page.contains("<dd id=\"latest-age\">3 h 00 min</dd>"));
        assert!(page.contains(
            "<td class=\"num\">10</td><td class=\"num\">7</td><td class=\"num\">3</td><td>bad_date 2, bad_xml 1</td>"
        ));
    }

    #[test]
    fn rejects_links_point_at_the_rejects_folder() {
        let d = data(five());
        let beside = render(&d, &RejectsLinks::BesideManifest);
        assert!(beside.contains("<a href=\"../../rejects/log_reviews/dt=2021-10-31/run=2021-10-31-abc/\">s3://movie-staging/rejects/log_reviews/dt=2021-10-31/run=2021-10-31-abc/</a>"));
        let none = render(&d, &RejectsLinks::None);
        assert!(none.contains("<code>s3://movie-staging/rejects/log_reviews/dt=2021-10-31/run=2021-10-31-abc/</code>"));
        assert!(!none.contains("<a href"));
    }
}
