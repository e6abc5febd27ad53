//! `log_reviews.csv`: `id_review,log`, one XML document per row in the vendor's exact layout,
//! LF line ends, the XML unquoted as in the real file (it holds no comma or quote; a broken
//! record that does gets quoted).

use std::fmt::Write as _;
use std::io;

use super::faults::{DelayedRows, Fault, FaultPlan, FaultTally};
use super::rng::Rng;
use super::sink::{push_field, push_u64, Sink};

pub const HEADER: &[u8] = b"id_review,log\n";

const DEVICES: &[&str] = &["Mobile", "Tablet", "Computer"];
const OSES: &[&str] = &["Apple MacOS", "Apple iOS", "Linux", "Microsoft Windows", "Google Android"];

/// The 50 states; the vendor spells three of them its own way (see `vendor_spelling`).
const STATES: &[&str] = &[
    "Alabama",
    "Alaska",
    "Arizona",
    "Arkansas",
    "California",
    "Colorado",
    "Connecticut",
    "Delaware",
    "Florida",
    "Georgia",
    "Hawaii",
    "Idaho",
    "Illinois",
    "Indiana",
    "Iowa",
    "Kansas",
    "Kentucky",
    "Louisiana",
    "Maine",
    "Maryland",
    "Massachusetts",
    "Michigan",
    "Minnesota",
    "Mississippi",
    "Missouri",
    "Montana",
    "Nebraska",
    "Nevada",
    "New Hampshire",
    "New Jersey",
    "New Mexico",
    "New York",
    "North Carolina",
    "North Dakota",
    "Ohio",
    "Oklahoma",
    "Oregon",
    "Pennsylvania",
    "Rhode Island",
    "South Carolina",
    "South Dakota",
    "Tennessee",
    "Texas",
    "Utah",
    "Vermont",
    "Virginia",
    "Washington",
    "West Virginia",
    "Wisconsin",
    "Wyoming",
];

/// The real file spells these three states only the vendor's way; a tenth of them here keep
/// the correct spelling so both paths of the jobs' mapping table are exercised.
const VENDOR_SPELLING_SHARE: f64 = 0.9;

fn vendor_spelling(state: &str) -> Option<&'static str> {
    match state {
        "Pennsylvania" => Some("Pensylvania"),
        "Louisiana" => Some("Lousiana"),
        "Massachusetts" => Some("Massachussets"),
        _ => None,
    }
}

/// The values of one log, drawn once; faults render them differently.
#[derive(Clone, PartialEq)]
struct LogRecord {
    date: usize,
    device: &'static str,
    location: &'static str,
    os: &'static str,
    ip: [u8; 4],
    phone: [u64; 3],
}

/// How the `logDate` element is rendered.
enum DateField<'a> {
    Valid,
    Missing,
    Raw(&'a str),
}

pub struct LogWriter<'a> {
    /// `MM-dd-yyyy` for every day of the date range, formatted once.
    dates: &'a [String],
    rng: Rng,
    faults: FaultPlan,
    pub tally: FaultTally,
}

impl<'a> LogWriter<'a> {
    pub fn new(dates: &'a [String], rng: Rng, faults: FaultPlan, tally: FaultTally) -> Self {
        LogWriter { dates, rng, faults, tally }
    }

    pub fn write(&mut self, ids: u64, sink: &mut Sink) -> io::Result<()> {
        sink.header(HEADER)?;
        let mut row = Vec::with_capacity(512);
        let mut xml = String::with_capacity(512);
        let mut delayed = DelayedRows::default();
        for id in 1..=ids {
            let record = draw(&mut self.rng, self.dates.len());
            let fault = self.faults.next();
            let mut id_text = None;
            match fault {
                Some(Fault::BadId) => id_text = Some(self.faults.bad_integer(id)),
                Some(Fault::BadXml) => self.render_broken_xml(&record, &mut xml),
                Some(Fault::BadDate) => self.render_bad_date(&record, &mut xml),
                _ => render(&record, self.dates, DateField::Valid, &mut xml),
            }
            build_row(&mut row, id, id_text.as_deref(), &xml);
            sink.row(&row)?;
            match fault {
                Some(Fault::DuplicateIdentical) => delayed.push(id + self.faults.rng.between(1, 20), row.clone()),
                Some(Fault::DuplicateConflicting) => {
                    let copy = self.conflicting_copy(&record, id);
                    delayed.push(id + self.faults.rng.between(1, 20), copy);
                }
                _ => {}
            }
            if let Some(fault) = fault {
                self.tally.add(fault);
            }
            delayed.write_due(id, sink)?;
        }
        delayed.write_all(sink)
    }

    fn render_broken_xml(&mut self, record: &LogRecord, xml: &mut String) {
        render(record, self.dates, DateField::Valid, xml);
        let rng = &mut self.faults.rng;
        match rng.below(4) {
            // Cut off mid-document, as a truncated transfer would.
            0 => {
                let cut = rng.between(20, xml.len() as u64 - 20) as usize;
                xml.truncate(cut);
            }
            1 => *xml = xml.replacen("</device>", "</devise>", 1),
            2 => *xml = xml.replacen("</os>", " & Co</os>", 1),
            _ => {
                let date = &self.dates[record.date];
                *xml = format!("{{\"logDate\": \"{date}\", \"device\": \"{}\"}}", record.device);
            }
        }
    }

    fn render_bad_date(&mut self, record: &LogRecord, xml: &mut String) {
        let date = &self.dates[record.date];
        let (month, rest) = date.split_at(2);
        let (day, year) = (&rest[1..3], &rest[4..]);
        let raw = match self.faults.rng.below(6) {
            0 => return render(record, self.dates, DateField::Missing, xml),
            1 => String::new(),
            2 => format!("02-30-{year}"),
            3 => format!("13-{day}-{year}"),
            4 => format!("{year}-{month}-{day}"),
            _ => format!("{month}/{day}/{year}"),
        };
        render(record, self.dates, DateField::Raw(&raw), xml);
    }

    fn conflicting_copy(&mut self, original: &LogRecord, id: u64) -> Vec<u8> {
        let mut other = draw(&mut self.faults.rng, self.dates.len());
        if other == *original {
            other.device = if original.device == DEVICES[0] { DEVICES[1] } else { DEVICES[0] };
        }
        let mut xml = String::new();
        render(&other, self.dates, DateField::Valid, &mut xml);
        let mut row = Vec::new();
        build_row(&mut row, id, None, &xml);
        row
    }
}

fn draw(rng: &mut Rng, days: usize) -> LogRecord {
    let date = rng.below(days as u64) as usize;
    let device = *rng.pick(DEVICES);
    let state = *rng.pick(STATES);
    let location = match vendor_spelling(state) {
        Some(vendor) if rng.chance(VENDOR_SPELLING_SHARE) => vendor,
        _ => state,
    };
    let os = *rng.pick(OSES);
    let ip = [rng.between(1, 223) as u8, rng.below(256) as u8, rng.below(256) as u8, rng.between(1, 254) as u8];
    let phone = [rng.between(201, 989), rng.below(1000), rng.below(10000)];
    LogRecord { date, device, location, os, ip, phone }
}

fn render(record: &LogRecord, dates: &[String], date: DateField, xml: &mut String) {
    xml.clear();
    xml.push_str("<reviewlog><log>");
    match date {
        DateField::Valid => push_element(xml, "logDate", &dates[record.date]),
        DateField::Raw(raw) => push_element(xml, "logDate", raw),
        DateField::Missing => {}
    }
    push_element(xml, "device", record.device);
    push_element(xml, "location", record.location);
    push_element(xml, "os", record.os);
    // `write!` into the reused String: no allocation per row.
    let [a, b, c, d] = record.ip;
    let [area, exchange, line] = record.phone;
    let _ = write!(xml, "<ipAddress>{a}.{b}.{c}.{d}</ipAddress>");
    let _ = write!(xml, "<phoneNumber>{area:03}-{exchange:03}-{line:04}</phoneNumber>");
    xml.push_str("</log></reviewlog>");
}

fn push_element(xml: &mut String, name: &str, value: &str) {
    xml.push('<');
    xml.push_str(name);
    xml.push('>');
    xml.push_str(value);
    xml.push_str("</");
    xml.push_str(name);
    xml.push('>');
}

fn build_row(row: &mut Vec<u8>, id: u64, id_text: Option<&str>, xml: &str) {
    row.clear();
    match id_text {
        Some(text) => push_field(row, text),
        None => push_u64(row, id),
    }
    row.push(b',');
    push_field(row, xml);
    row.push(b'\n');
}
