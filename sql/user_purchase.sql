-- The source table of purchases (DESIGN.md 2.1), loaded by `emr-driver load-user-purchase`
-- from the UCI user_purchase.csv. Run inside the load's transaction: creates it if missing.
CREATE TABLE IF NOT EXISTS user_purchase (
    invoice_number varchar(10),
    stock_code     varchar(20),
    detail         varchar(1000),
    quantity       int,
    invoice_date   timestamp,
    unit_price     numeric(8,3),
    customer_id    int,
    country        varchar(20)
);
