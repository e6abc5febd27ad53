//! `movie_review.csv`: `cid,review_str,id_review`, RFC 4180 with LF line ends; review ids
//! 1..N, customer ids from the purchasers (plus a few that never purchased).

use std::io;

use super::faults::{DelayedRows, Fault, FaultPlan, FaultTally};
use super::rng::Rng;
use super::sink::{push_field, push_u64, Sink};
use super::text::ReviewText;

pub const HEADER: &[u8] = b"cid,review_str,id_review\n";

/// Share of reviews written by customers without any purchase (amount spent 0).
const NON_PURCHASER_SHARE: f64 = 0.05;

/// Where review customer ids come from.
pub struct Customers<'a> {
    pub purchasers: &'a [u32],
    pub non_purchasers: &'a [u32],
}

impl Customers<'_> {
    fn pick(&self, rng: &mut Rng) -> u32 {
        if self.purchasers.is_empty() || rng.chance(NON_PURCHASER_SHARE) {
            *rng.pick(self.non_purchasers)
        } else {
            *rng.pick(self.purchasers)
        }
    }
}

pub struct ReviewWriter<'a> {
    customers: Customers<'a>,
    text: ReviewText,
    rng: Rng,
    faults: FaultPlan,
    pub tally: FaultTally,
    /// Reviews containing `good` among the rows a correct job keeps.
    pub expected_positive: u64,
}

impl<'a> ReviewWriter<'a> {
    pub fn new(customers: Customers<'a>, text: ReviewText, rng: Rng, faults: FaultPlan, tally: FaultTally) -> Self {
        ReviewWriter { customers, text, rng, faults, tally, expected_positive: 0 }
    }

    pub fn write(&mut self, ids: u64, sink: &mut Sink) -> io::Result<()> {
        sink.header(HEADER)?;
        let mut row = Vec::with_capacity(4096);
        let mut text = String::with_capacity(4096);
        let mut delayed = DelayedRows::default();
        for id in 1..=ids {
            let cid = self.customers.pick(&mut self.rng);
            let positive = self.text.build(&mut self.rng, &mut text);
            let fault = self.faults.next();
            match fault {
                Some(Fault::BadId) => {
                    let bad = self.faults.bad_integer(id);
                    build_row(&mut row, &Field::Int(u64::from(cid)), &text, &Field::Text(&bad));
                }
                Some(Fault::BadCustomerId) => {
                    let bad = self.faults.bad_integer(u64::from(cid));
                    build_row(&mut row, &Field::Text(&bad), &text, &Field::Int(id));
                }
                _ => build_row(&mut row, &Field::Int(u64::from(cid)), &text, &Field::Int(id)),
            }
            sink.row(&row)?;
            match fault {
                None | Some(Fault::DuplicateIdentical) => self.expected_positive += u64::from(positive),
                _ => {}
            }
            match fault {
                Some(Fault::DuplicateIdentical) => delayed.push(id + self.faults.rng.between(1, 20), row.clone()),
                Some(Fault::DuplicateConflicting) => {
                    let copy = self.conflicting_copy(cid, &text, id);
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

    /// Same review id, different content: another customer or another text.
    fn conflicting_copy(&mut self, cid: u32, text: &str, id: u64) -> Vec<u8> {
        let mut row = Vec::new();
        let rng = &mut self.faults.rng;
        if rng.chance(0.5) {
            let mut other = self.customers.pick(rng);
            if other == cid {
                other = cid + 1;
            }
            build_row(&mut row, &Field::Int(u64::from(other)), text, &Field::Int(id));
        } else {
            let mut other = String::new();
            self.text.build(rng, &mut other);
            if other == text {
                other.push_str(" Edited.");
            }
            build_row(&mut row, &Field::Int(u64::from(cid)), &other, &Field::Int(id));
        }
        row
    }
}

enum Field<'a> {
    Int(u64),
    Text(&'a str),
}

fn build_row(row: &mut Vec<u8>, cid: &Field, text: &str, id: &Field) {
    row.clear();
    push(row, cid);
    row.push(b',');
    push_field(row, text);
    row.push(b',');
    push(row, id);
    row.push(b'\n');
}

fn push(row: &mut Vec<u8>, field: &Field) {
    match field {
        Field::Int(n) => push_u64(row, *n),
        Field::Text(s) => push_field(row, s),
    }
}
