//! Deliberately broken records (`--malformed-rate`): which record gets which fault, the
//! duplicate copies waiting to be written a few rows later, and the tally that becomes the
//! `_generated.json` summary.

use std::collections::BTreeMap;
use std::io;

use serde::Serialize;

use super::rng::Rng;
use super::sink::Sink;

/// The ways a record can break, named after the reject reasons of docs/architecture.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `id_review` missing or not an integer.
    BadId,
    /// `cid` missing or not an integer (reviews only).
    BadCustomerId,
    /// The `log` XML is not well-formed (logs only).
    BadXml,
    /// `logDate` missing or not a valid `MM-dd-yyyy` date (logs only).
    BadDate,
    /// A second copy of a clean record, byte for byte: one copy is kept.
    DuplicateIdentical,
    /// A second record with the same id and different content: every copy is rejected.
    DuplicateConflicting,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::BadId => "bad_id",
            Fault::BadCustomerId => "bad_customer_id",
            Fault::BadXml => "bad_xml",
            Fault::BadDate => "bad_date",
            Fault::DuplicateIdentical => "duplicate_identical",
            Fault::DuplicateConflicting => "duplicate_conflicting",
        }
    }
}

pub const REVIEW_FAULTS: &[Fault] =
    &[Fault::BadId, Fault::BadCustomerId, Fault::DuplicateIdentical, Fault::DuplicateConflicting];
pub const LOG_FAULTS: &[Fault] =
    &[Fault::BadId, Fault::BadXml, Fault::BadDate, Fault::DuplicateIdentical, Fault::DuplicateConflicting];

/// Decides, record by record, whether and how to break it. Draws from its own stream so the
/// clean records are the same whatever the rate.
pub struct FaultPlan {
    pub rng: Rng,
    rate: f64,
    kinds: &'static [Fault],
}

impl FaultPlan {
    pub fn new(rng: Rng, rate: f64, kinds: &'static [Fault]) -> Self {
        FaultPlan { rng, rate, kinds }
    }

    pub fn next(&mut self) -> Option<Fault> {
        if self.rate > 0.0 && self.rng.chance(self.rate) {
            Some(*self.rng.pick(self.kinds))
        } else {
            None
        }
    }

    /// A value for an id field that is missing or not an integer.
    pub fn bad_integer(&mut self, good: u64) -> String {
        match self.rng.below(5) {
            0 => String::new(),
            1 => format!("{good}a"),
            2 => format!("{good}.5"),
            3 => "N/A".to_string(),
            _ => format!("#{good}"),
        }
    }
}

/// Duplicate copies are written a few rows after their original (not next to it), like a
/// vendor resending part of a file.
#[derive(Default)]
pub struct DelayedRows {
    waiting: Vec<(u64, Vec<u8>)>,
}

impl DelayedRows {
    pub fn push(&mut self, due_after_id: u64, row: Vec<u8>) {
        self.waiting.push((due_after_id, row));
    }

    /// Writes, in the order they were queued, the copies due once record `id` is written.
    pub fn write_due(&mut self, id: u64, sink: &mut Sink) -> io::Result<()> {
        if self.waiting.iter().all(|(due, _)| *due > id) {
            return Ok(());
        }
        let mut still_waiting = Vec::with_capacity(self.waiting.len());
        for (due, row) in self.waiting.drain(..) {
            if due <= id {
                sink.row(&row)?;
            } else {
                still_waiting.push((due, row));
            }
        }
        self.waiting = still_waiting;
        Ok(())
    }

    pub fn write_all(&mut self, sink: &mut Sink) -> io::Result<()> {
        self.write_due(u64::MAX, sink)
    }
}

/// How many records of each fault a file holds, and what a correct job makes of the file.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FaultTally {
    /// Broken records written, by fault (for duplicates: the extra copies).
    pub injected: BTreeMap<&'static str, u64>,
}

impl FaultTally {
    pub fn new(kinds: &[Fault]) -> Self {
        FaultTally { injected: kinds.iter().map(|k| (k.name(), 0)).collect() }
    }

    pub fn add(&mut self, fault: Fault) {
        *self.injected.entry(fault.name()).or_insert(0) += 1;
    }

    pub fn count(&self, fault: Fault) -> u64 {
        self.injected.get(fault.name()).copied().unwrap_or(0)
    }

    /// The rejects a job following DESIGN.md 2.3 must produce, by reason: each bad record
    /// once, each identical copy once (the original is kept), and both the original and the
    /// copy of each conflicting pair (`duplicate_key`).
    pub fn expected(&self, rows_in: u64) -> Expected {
        let mut by_reason = BTreeMap::new();
        for fault in [Fault::BadId, Fault::BadCustomerId, Fault::BadXml, Fault::BadDate, Fault::DuplicateIdentical] {
            if self.injected.contains_key(fault.name()) {
                by_reason.insert(fault.name(), self.count(fault));
            }
        }
        if self.injected.contains_key(Fault::DuplicateConflicting.name()) {
            by_reason.insert("duplicate_key", 2 * self.count(Fault::DuplicateConflicting));
        }
        let rows_rejected: u64 = by_reason.values().sum();
        Expected { rows_in, rows_out: rows_in - rows_rejected, rows_rejected, rejected_by_reason: by_reason }
    }
}

/// What a job reading the file must report (the metrics-file shape of docs/architecture.md).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Expected {
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_rejected: u64,
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_rejects_count_both_copies_of_a_conflict() {
        let mut tally = FaultTally::new(LOG_FAULTS);
        tally.add(Fault::BadXml);
        tally.add(Fault::DuplicateIdentical);
        tally.add(Fault::DuplicateConflicting);
        let expected = tally.expected(10);
        assert_eq!(expected.rows_rejected, 1 + 1 + 2);
        assert_eq!(expected.rows_out, 6);
        assert_eq!(expected.rejected_by_reason["duplicate_key"], 2);
        assert_eq!(expected.rejected_by_reason["bad_date"], 0);
        assert!(!expected.rejected_by_reason.contains_key("bad_customer_id"));
    }

    #[test]
    fn zero_rate_never_breaks_anything() {
        let mut plan = FaultPlan::new(Rng::stream(1, 1), 0.0, REVIEW_FAULTS);
        assert!((0..1000).all(|_| plan.next().is_none()));
    }
}
