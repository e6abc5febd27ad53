//! Review texts: sentences assembled from fixed pools, sized to an average length, with the
//! word `good` in its disguises. Whether a text contains the word `good` (DESIGN.md 2.3) is
//! decided here and returned, so the summary knows the expected positive count.
//!
//! Only the `POSITIVE` pool contains the word `good`; every other pool avoids it, and the
//! `DECOY` pool holds the look-alikes that are not the word (`goodness`, `goodbye`, `g00d`...).
//! A unit test checks that with an independent tokenizer.

use super::rng::Rng;

/// Share of reviews containing the word `good` (the vendor's real rate).
pub const POSITIVE_SHARE: f64 = 0.345;
const DECOY_SHARE: f64 = 0.45;
const NEWLINE_SHARE: f64 = 0.03;
const UNICODE_SHARE: f64 = 0.04;
const QUOTE_SHARE: f64 = 0.03;
/// An empty review text is valid (positive 0) in the contract; a few keep the jobs honest.
const EMPTY_SHARE: f64 = 0.001;
const SECOND_CLAUSE_SHARE: f64 = 0.3;
const PARAGRAPH_SHARE: f64 = 0.2;
/// Average bytes of one base sentence plus its joiner, used to place the special sentences.
const SENTENCE_BYTES: usize = 62;
/// Average bytes of a closing sentence and its joiner.
const CLOSER_BYTES: usize = 17;

const OPENERS: &[&str] = &[
    "I watched this last weekend and",
    "Honestly,",
    "To be fair,",
    "My brother dragged me to this and",
    "Going in blind,",
    "On a second viewing,",
    "As someone who read the book,",
    "The trailer promised a lot, but",
    "Frankly,",
    "For what it is,",
    "Compared with the original,",
    "Halfway through,",
    "In the end,",
    "By the last reel,",
    "Without spoiling anything,",
    "We saw the late show and",
];

const CLAUSES: &[&str] = &[
    "the plot wanders off in the second hour",
    "the lead actor carries every scene",
    "the soundtrack is forgettable",
    "the camera work is superb",
    "the script needed another draft",
    "the jokes fall flat",
    "the twist is telegraphed from the start",
    "the supporting cast shines",
    "the runtime feels bloated",
    "the final act is a triumph",
    "the dialogue sounds improvised",
    "the effects hold up surprisingly well",
    "the editing is choppy",
    "the costumes are gorgeous",
    "the villain is paper-thin",
    "the pacing never lets up",
    "nothing much happens",
    "the chemistry between the leads is real",
    "the sound mix buries the dialogue",
    "the ending lands",
];

const ENDINGS: &[&str] = &[".", ".", ".", "!", "...", "?"];

const CLOSERS: &[&str] = &[
    "Seven out of ten.",
    "Skip it.",
    "Worth a matinee.",
    "I would see it again.",
    "Not for everyone.",
    "Two stars.",
    "A rental at best.",
    "Bring tissues.",
];

/// Each contains the word `good` (case-insensitive, delimited by non-letters/digits).
const POSITIVE: &[&str] = &[
    "The score is good.",
    "Good!",
    "The supporting cast is GOOD.",
    "Not good, not terrible.",
    "A good-looking production.",
    "The first hour is good...",
    "Honestly? good.",
    "<br />good fun for the whole family.",
    "The critics called it \"good\", and they were right.",
    "The effects (good) outshine the story.",
    "Good, but too long.",
    "The soundtrack is gOoD enough.",
    "It is \u{201c}good\u{201d} in the way airport novels are.",
    "The cast is good\u{2026} mostly.",
    "Good\u{2014}and I mean it.",
    "Pretty good?!",
    "The ending is good; the middle drags.",
    "It's good!!",
];

/// Look-alikes that are not the word `good`.
const DECOY: &[&str] = &[
    "Goodness knows why it got made.",
    "Say goodbye to two hours.",
    "The g00d parts are few.",
    "It is no Goodfellas.",
    "The baked goods at the cinema were the highlight.",
    "A goody-two-shoes hero.",
    "It has a feel-goodish glow.",
    "Plenty of goodwill squandered.",
    "Directed by a Goodman, apparently.",
    "The good2go crowd will love it.",
    "The title card says GOODNIGHT.",
    "A nogood drifter leads the story.",
];

const UNICODE: &[&str] = &[
    "It reminded me of Am\u{e9}lie.",
    "The caf\u{e9} scenes are lovely.",
    "A na\u{ef}ve script \u{2014} but a fun one.",
    "Shot in S\u{e3}o Paulo and Z\u{fc}rich.",
    "Bj\u{f6}rk would have written a better score.",
    "\u{2605}\u{2605}\u{2605}\u{2606}\u{2606}",
    "D\u{e9}j\u{e0} vu all over again.",
    "Bring \u{1f37f} and low expectations.",
    "The \u{6620}\u{753b} title is better than the English one.",
    "\u{141}\u{f3}d\u{17a} never looked so grey.",
    "Half the runtime \u{2014} \u{bd} \u{2014} would do.",
];

const QUOTED: &[&str] = &[
    "The so-called \"director's cut\" adds nothing.",
    "My friend kept saying \"wait for it\".",
    "The tagline \"one last job\" says it all.",
    "Someone behind me whispered \"again?\" twice.",
];

/// Builds review texts of a chosen average length.
pub struct ReviewText {
    average_bytes: usize,
}

/// A sentence to place somewhere in the text, at a base-sentence index.
struct Special {
    at: usize,
    sentence: &'static str,
    newline_before: bool,
}

impl ReviewText {
    pub fn new(average_bytes: usize) -> Self {
        ReviewText { average_bytes }
    }

    /// Writes one review text into `out` (cleared first); returns whether it contains the
    /// word `good`.
    pub fn build(&self, rng: &mut Rng, out: &mut String) -> bool {
        out.clear();
        if rng.chance(EMPTY_SHARE) {
            return false;
        }
        // Triangular spread from 0.4x to 1.6x the average, like real reviews.
        let target = (self.average_bytes as f64 * (0.4 + 0.6 * (rng.unit() + rng.unit()))) as usize;
        let slots = target / SENTENCE_BYTES + 1;
        let positive = rng.chance(POSITIVE_SHARE);
        let mut specials: [Option<Special>; 5] = Default::default();
        // (share of reviews, pool, whether the sentence starts a new line)
        let pools: [(f64, &[&'static str], bool); 5] = [
            (if positive { 1.0 } else { 0.0 }, POSITIVE, false),
            (DECOY_SHARE, DECOY, false),
            (UNICODE_SHARE, UNICODE, false),
            (QUOTE_SHARE, QUOTED, false),
            (NEWLINE_SHARE, CLOSERS, true),
        ];
        for (slot, (share, pool, newline_before)) in specials.iter_mut().zip(pools) {
            if rng.chance(share) {
                let at = rng.below(slots as u64) as usize;
                *slot = Some(Special { at, sentence: any(rng, pool), newline_before });
            }
        }
        // The specials and the closer count towards the length, so fewer base sentences.
        let special_bytes: usize = specials.iter().flatten().map(|s| s.sentence.len() + 1).sum();
        let budget = target.saturating_sub(special_bytes + CLOSER_BYTES);
        let mut index = 0;
        while out.len() + SENTENCE_BYTES / 2 < budget + Self::placed_bytes(&specials, special_bytes) {
            Self::place_specials(out, &mut specials, Some(index), rng);
            Self::join(out, rng);
            Self::base_sentence(out, rng);
            index += 1;
        }
        Self::place_specials(out, &mut specials, None, rng);
        Self::join(out, rng);
        out.push_str(any(rng, CLOSERS));
        positive
    }

    /// Bytes of the specials already written (those no longer waiting in `specials`).
    fn placed_bytes(specials: &[Option<Special>], total: usize) -> usize {
        total - specials.iter().flatten().map(|s| s.sentence.len() + 1).sum::<usize>()
    }

    /// Writes the specials due at base-sentence `index` (all remaining ones when `None`).
    fn place_specials(out: &mut String, specials: &mut [Option<Special>], index: Option<usize>, rng: &mut Rng) {
        for slot in specials.iter_mut() {
            let due = matches!((&*slot, index), (Some(s), Some(i)) if s.at == i) || (slot.is_some() && index.is_none());
            if due {
                let special = slot.take().expect("checked above");
                if special.newline_before && !out.is_empty() {
                    out.push('\n');
                } else {
                    Self::join(out, rng);
                }
                out.push_str(special.sentence);
            }
        }
    }

    fn join(out: &mut String, rng: &mut Rng) {
        if out.is_empty() || out.ends_with('\n') {
            return;
        }
        out.push_str(if rng.chance(PARAGRAPH_SHARE) { " <br /><br /> " } else { " " });
    }

    fn base_sentence(out: &mut String, rng: &mut Rng) {
        out.push_str(any(rng, OPENERS));
        out.push(' ');
        out.push_str(any(rng, CLAUSES));
        if rng.chance(SECOND_CLAUSE_SHARE) {
            out.push_str("; ");
            out.push_str(any(rng, CLAUSES));
        }
        out.push_str(any(rng, ENDINGS));
    }
}

/// One of `pool`, uniformly (`Rng::pick` with the pool's `'static` lifetime spelled out).
fn any(rng: &mut Rng, pool: &[&'static str]) -> &'static str {
    pool[rng.below(pool.len() as u64) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DESIGN.md 2.3, written independently of the pools: words are maximal runs of Unicode
    /// letters and digits, compared case-insensitively.
    fn has_word_good(text: &str) -> bool {
        text.split(|c: char| !c.is_alphanumeric()).any(|w| w.to_lowercase() == "good")
    }

    #[test]
    fn only_the_positive_pool_contains_the_word() {
        for s in POSITIVE {
            assert!(has_word_good(s), "{s}");
        }
        for pool in [OPENERS, CLAUSES, ENDINGS, CLOSERS, DECOY, UNICODE, QUOTED] {
            for s in pool {
                assert!(!has_word_good(s), "{s}");
            }
        }
    }

    #[test]
    fn the_returned_flag_matches_the_text() {
        let builder = ReviewText::new(900);
        let mut rng = Rng::stream(3, 0);
        let mut text = String::new();
        for _ in 0..2000 {
            let positive = builder.build(&mut rng, &mut text);
            assert_eq!(positive, has_word_good(&text), "{text}");
        }
    }

    #[test]
    fn average_length_follows_the_option() {
        for average in [200usize, 908, 3000] {
            let builder = ReviewText::new(average);
            let mut rng = Rng::stream(5, 0);
            let mut text = String::new();
            let total: usize = (0..3000)
                .map(|_| {
                    builder.build(&mut rng, &mut text);
                    text.len()
                })
                .sum();
            let mean = total as f64 / 3000.0;
            eprintln!("asked {average}, got {mean}");
            assert!((mean - average as f64).abs() < average as f64 * 0.05, "asked {average}, got {mean}");
        }
    }
}
