//! `user_purchase.csv` in the UCI "Online Retail" layout: UCI header, CRLF line ends, minimal
//! quoting with doubled quotes, `M/D/YYYY H:MM` dates, prices without trailing zeros, about a
//! quarter of the rows without `CustomerID`, returns (`C` invoices, negative quantities) and a
//! few U+FFFD in descriptions.

use std::io;

use chrono::{Datelike, Days, NaiveDate};
use serde::Serialize;

use super::rng::Rng;
use super::sink::{push_field, push_u64, Sink};

pub const HEADER: &[u8] = b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n";

/// The UCI data's first invoice number and first customer id.
const FIRST_INVOICE: u64 = 536_365;
const FIRST_CUSTOMER_ID: u32 = 12_346;
/// Rows per customer in the UCI data (406,829 rows with an id / 4,372 customers).
const ROWS_PER_CUSTOMER: u64 = 90;
const RETURN_INVOICE_SHARE: f64 = 0.15;
/// Invoices without a customer; they hold ~25% of the rows, like the UCI data.
const GUEST_INVOICE_SHARE: f64 = 0.25;
const CATALOG_SIZE: usize = 800;
/// Invoices span the UCI period, 12/1/2010 to 12/9/2011, during opening hours.
const PERIOD_DAYS: u64 = 374;
const OPENING_MINUTE: u64 = 7 * 60;
const OPEN_MINUTES: u64 = 13 * 60;

const COUNTRIES: &[(&str, u32)] = &[
    ("United Kingdom", 890),
    ("Germany", 20),
    ("France", 18),
    ("EIRE", 15),
    ("Spain", 6),
    ("Netherlands", 5),
    ("Belgium", 5),
    ("Switzerland", 5),
    ("Portugal", 4),
    ("Australia", 3),
    ("Norway", 3),
    ("Italy", 3),
    ("Channel Islands", 2),
    ("Finland", 2),
    ("Cyprus", 2),
    ("Sweden", 2),
    ("Unspecified", 1),
    ("USA", 1),
    ("Japan", 1),
    ("European Community", 1),
    ("United Arab Emirates", 1),
    ("RSA", 1),
];

const PREFIXES: &[&str] = &[
    "WHITE",
    "RED",
    "PINK",
    "BLUE",
    "GREEN",
    "IVORY",
    "BLACK",
    "VINTAGE",
    "RETRO",
    "ASSORTED COLOUR",
    "SET OF 3",
    "SET 7",
    "JUMBO",
    "SMALL",
    "LARGE",
    "REGENCY",
    "POPPY'S",
    "CHILDRENS",
];
const PATTERNS: &[&str] = &[
    "RETROSPOT",
    "POLKA DOT",
    "FLORAL",
    "SPOTTY",
    "STRIPE",
    "UNION JACK",
    "WOODLAND",
    "CHRISTMAS",
    "GLASS",
    "ENAMEL",
    "PAISLEY",
    "HEART",
];
const NOUNS: &[&str] = &[
    "HANGING HEART T-LIGHT HOLDER",
    "METAL LANTERN",
    "CAKE STAND",
    "LUNCH BAG",
    "TEA CUP AND SAUCER",
    "BIRD ORNAMENT",
    "HOT WATER BOTTLE",
    "COAT HANGER",
    "PHOTO FRAME",
    "DOORMAT",
    "PARTY BUNTING",
    "STORAGE TIN",
    "CHALKBOARD",
    "NESTING BOXES",
    "CANDLE",
    "NOTEBOOK",
    "JAM JAR",
    "PAPER CHAIN KIT",
    "WALL CLOCK",
    "MUG",
    "TRAY",
    "CUTLERY SET",
];
const PRICES_CENTS: &[u64] = &[
    29, 39, 42, 55, 65, 72, 79, 83, 85, 95, 125, 145, 165, 169, 185, 210, 250, 255, 295, 339, 375, 425, 495, 595, 650,
    795, 850, 995, 1275, 1495, 1895, 2495,
];
const QUANTITIES: &[u64] = &[1, 1, 1, 2, 2, 3, 4, 6, 6, 8, 10, 12, 12, 12, 24, 24, 25, 36, 48, 96];
const RETURN_QUANTITIES: &[u64] = &[1, 1, 1, 2, 3, 4, 6, 12, 24];

struct Product {
    code: String,
    description: String,
    price_cents: u64,
}

struct Customer {
    id: u32,
    country: &'static str,
}

/// What the purchases file holds, for the summary.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PurchaseStats {
    pub customers: u64,
    pub rows_without_customer_id: u64,
    pub return_rows: u64,
    pub rows_with_replacement_char: u64,
}

pub struct PurchaseWriter {
    rng: Rng,
    catalog: Vec<Product>,
    customers: Vec<Customer>,
    seen: Vec<bool>,
    pub stats: PurchaseStats,
}

impl PurchaseWriter {
    /// The customer pool is sized like the UCI data: one customer per ~90 rows with an id.
    pub fn new(mut rng: Rng, rows: u64) -> Self {
        let catalog = (0..CATALOG_SIZE).map(|_| product(&mut rng)).collect();
        let wanted = (rows * 3 / 4 / ROWS_PER_CUSTOMER).max(1);
        let mut customers = Vec::with_capacity(wanted as usize);
        let mut id = FIRST_CUSTOMER_ID;
        while (customers.len() as u64) < wanted {
            // The UCI ids are sparse: about three in four ids of the range are used.
            if rng.chance(0.74) {
                customers.push(Customer { id, country: weighted_country(&mut rng) });
            }
            id += 1;
        }
        let seen = vec![false; customers.len()];
        PurchaseWriter { rng, catalog, customers, seen, stats: PurchaseStats::default() }
    }

    /// Writes `rows` data rows; returns the customer ids that appear in them, ascending.
    pub fn write(&mut self, rows: u64, sink: &mut Sink) -> io::Result<Vec<u32>> {
        sink.header(HEADER)?;
        let mut row = Vec::with_capacity(256);
        let mut written = 0;
        let mut invoice = FIRST_INVOICE;
        while written < rows {
            let lines = self.write_invoice(invoice, written, rows, &mut row, sink)?;
            written += lines;
            invoice += 1;
        }
        let purchasers: Vec<u32> =
            self.customers.iter().zip(&self.seen).filter(|(_, seen)| **seen).map(|(c, _)| c.id).collect();
        self.stats.customers = purchasers.len() as u64;
        Ok(purchasers)
    }

    fn write_invoice(
        &mut self,
        number: u64,
        first_row: u64,
        rows: u64,
        row: &mut Vec<u8>,
        sink: &mut Sink,
    ) -> io::Result<u64> {
        let is_return = self.rng.chance(RETURN_INVOICE_SHARE);
        let guest = !is_return && self.rng.chance(GUEST_INVOICE_SHARE);
        let customer = if guest { None } else { Some(self.rng.below(self.customers.len() as u64) as usize) };
        let lines = if is_return { self.rng.between(1, 3) } else { self.rng.between(1, 40) };
        let lines = lines.min(rows - first_row);
        let invoice_no = if is_return { format!("C{number}") } else { number.to_string() };
        let date = invoice_date(first_row, rows);
        let (customer_id, country) = match customer {
            Some(index) => {
                self.seen[index] = true;
                (Some(self.customers[index].id), self.customers[index].country)
            }
            None => (None, if self.rng.chance(0.97) { "United Kingdom" } else { "Unspecified" }),
        };
        for _ in 0..lines {
            let line = line(&mut self.rng, &self.catalog, is_return, guest);
            row.clear();
            push_field(row, &invoice_no);
            row.push(b',');
            push_field(row, line.code);
            row.push(b',');
            push_field(row, line.description);
            row.push(b',');
            if line.quantity < 0 {
                row.push(b'-');
            }
            push_u64(row, line.quantity.unsigned_abs());
            row.push(b',');
            row.extend_from_slice(date.as_bytes());
            row.push(b',');
            push_price(row, line.price_cents);
            row.push(b',');
            if let Some(id) = customer_id {
                push_u64(row, u64::from(id));
            }
            row.push(b',');
            push_field(row, country);
            row.extend_from_slice(b"\r\n");
            sink.row(row)?;
            count(&mut self.stats, &line, customer_id.is_none(), is_return);
        }
        Ok(lines)
    }
}

fn count(stats: &mut PurchaseStats, line: &Line, guest: bool, is_return: bool) {
    stats.rows_without_customer_id += u64::from(guest);
    stats.return_rows += u64::from(is_return);
    stats.rows_with_replacement_char += u64::from(line.description.contains('\u{fffd}'));
}

/// One invoice line: mostly catalog products, plus the UCI file's special lines.
fn line<'a>(rng: &mut Rng, catalog: &'a [Product], is_return: bool, guest: bool) -> Line<'a> {
    if is_return && rng.chance(0.05) {
        return Line { code: "D", description: "Discount", quantity: -1, price_cents: rng.between(500, 5000) };
    }
    if !is_return && rng.chance(0.003) {
        return Line { code: "POST", description: "POSTAGE", quantity: rng.between(1, 3) as i64, price_cents: 1800 };
    }
    if guest && rng.chance(0.01) {
        // The UCI data has unpriced lines without a description (stock adjustments).
        let product = &catalog[rng.below(catalog.len() as u64) as usize];
        return Line { code: &product.code, description: "", quantity: rng.between(1, 60) as i64, price_cents: 0 };
    }
    if !is_return && rng.chance(0.001) {
        return gift_voucher(rng);
    }
    let product = &catalog[rng.below(catalog.len() as u64) as usize];
    let quantity = if is_return { -(*rng.pick(RETURN_QUANTITIES) as i64) } else { *rng.pick(QUANTITIES) as i64 };
    Line { code: &product.code, description: &product.description, quantity, price_cents: product.price_cents }
}

struct Line<'a> {
    code: &'a str,
    description: &'a str,
    quantity: i64,
    price_cents: u64,
}

/// The UCI gift vouchers lost their pound sign to U+FFFD on the way.
fn gift_voucher(rng: &mut Rng) -> Line<'static> {
    const VOUCHERS: &[(&str, &str, u64)] = &[
        ("gift_0001_10", "Dotcomgiftshop Gift Voucher \u{fffd}10.00", 851),
        ("gift_0001_20", "Dotcomgiftshop Gift Voucher \u{fffd}20.00", 1702),
        ("gift_0001_30", "Dotcomgiftshop Gift Voucher \u{fffd}30.00", 2553),
        ("gift_0001_40", "Dotcomgiftshop Gift Voucher \u{fffd}40.00", 3404),
        ("gift_0001_50", "Dotcomgiftshop Gift Voucher \u{fffd}50.00", 4255),
    ];
    let (code, description, price_cents) = *rng.pick(VOUCHERS);
    Line { code, description, quantity: 1, price_cents }
}

fn product(rng: &mut Rng) -> Product {
    let letter = if rng.chance(0.25) { char::from(b'A' + rng.below(8) as u8).to_string() } else { String::new() };
    let code = format!("{}{letter}", rng.between(10_002, 90_214));
    let noun = *rng.pick(NOUNS);
    let mut description = match rng.below(100) {
        // A comma, so the field is quoted: "TRAY, BREAKFAST IN BED".
        0..=3 => format!("{noun}, {}", rng.pick(PATTERNS)),
        // An inch mark, so the quote is doubled: "RECORD FRAME 7"" SINGLE SIZE".
        4 => format!("{} FRAME {}\" SINGLE SIZE", rng.pick(PREFIXES), rng.between(5, 12)),
        5..=54 => format!("{} {} {noun}", rng.pick(PREFIXES), rng.pick(PATTERNS)),
        _ => format!("{} {noun}", rng.pick(PREFIXES)),
    };
    if rng.chance(0.1) {
        description.push(' ');
    }
    Product { code, description, price_cents: *rng.pick(PRICES_CENTS) }
}

fn weighted_country(rng: &mut Rng) -> &'static str {
    let total: u32 = COUNTRIES.iter().map(|(_, w)| w).sum();
    let mut ticket = rng.below(u64::from(total)) as u32;
    for (country, weight) in COUNTRIES {
        if ticket < *weight {
            return country;
        }
        ticket -= weight;
    }
    COUNTRIES[0].0
}

/// `M/D/YYYY H:MM`, rising with the row position through the UCI period.
fn invoice_date(first_row: u64, rows: u64) -> String {
    let minutes = u128::from(first_row) * u128::from(PERIOD_DAYS * OPEN_MINUTES) / u128::from(rows.max(1));
    let minutes = minutes as u64;
    let start = NaiveDate::from_ymd_opt(2010, 12, 1).expect("a valid date");
    let day = start + Days::new(minutes / OPEN_MINUTES);
    let minute_of_day = OPENING_MINUTE + minutes % OPEN_MINUTES;
    format!("{}/{}/{} {}:{:02}", day.month(), day.day(), day.year(), minute_of_day / 60, minute_of_day % 60)
}

/// Prices as the UCI file writes them: `2.55`, `2.1`, `3`, `0`.
fn push_price(row: &mut Vec<u8>, cents: u64) {
    push_u64(row, cents / 100);
    let fraction = cents % 100;
    if fraction == 0 {
        return;
    }
    row.push(b'.');
    if fraction.is_multiple_of(10) {
        push_u64(row, fraction / 10);
    } else {
        row.push(b'0' + (fraction / 10) as u8);
        row.push(b'0' + (fraction % 10) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(cents: u64) -> String {
        let mut row = Vec::new();
        push_price(&mut row, cents);
        String::from_utf8(row).unwrap()
    }

    #[test]
    fn prices_drop_trailing_zeros_like_the_uci_file() {
        assert_eq!(price(255), "2.55");
        assert_eq!(price(210), "2.1");
        assert_eq!(price(300), "3");
        assert_eq!(price(0), "0");
        assert_eq!(price(5), "0.05");
    }

    #[test]
    fn dates_use_the_uci_layout_and_rise() {
        assert_eq!(invoice_date(0, 1000), "12/1/2010 7:00");
        let last = invoice_date(999, 1000);
        assert!(last.starts_with("12/") && last.contains("/2011 "), "{last}");
    }
}
