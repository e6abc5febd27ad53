-- The views BI tools read (DESIGN.md 2.4), created or refreshed by every warehouse load.
-- Portable: PostgreSQL and Redshift run this file as it is (`__SCHEMA__` = the warehouse
-- schema); for the embedded SQLite warehouse the driver turns each `CREATE OR REPLACE VIEW`
-- into `DROP VIEW IF EXISTS` + `CREATE VIEW` and drops the `__SCHEMA__.` prefixes.

-- The fact with every dimension's values by name (one row per fact row). amount_spent is the
-- customer's net spend repeated on each of the customer's rows: do not SUM it here, use
-- v_customer_spend.
CREATE OR REPLACE VIEW __SCHEMA__.v_fact_movie_analytics AS
SELECT f.customerid,
       f.insert_date,
       f.id_dim_date,
       dt.log_date,
       dt.day,
       dt.month,
       dt.year,
       dt.season,
       f.id_dim_devices,
       dv.device,
       f.id_dim_location,
       l.location,
       l.state_code,
       l.region,
       f.id_dim_os,
       o.os,
       f.id_dim_browser,
       b.browser,
       f.review_count,
       f.review_score,
       f.amount_spent
FROM __SCHEMA__.fact_movie_analytics f
JOIN __SCHEMA__.dim_date dt     ON dt.id_dim_date     = f.id_dim_date
JOIN __SCHEMA__.dim_devices dv  ON dv.id_dim_devices  = f.id_dim_devices
JOIN __SCHEMA__.dim_location l  ON l.id_dim_location  = f.id_dim_location
JOIN __SCHEMA__.dim_os o        ON o.id_dim_os        = f.id_dim_os
JOIN __SCHEMA__.dim_browser b   ON b.id_dim_browser   = f.id_dim_browser;

-- One row per customer, so a SUM of any column is right: the reviews and positive reviews
-- over every run date, and the net spend as of the customer's latest run date (amount_spent
-- is the same on every row of a customer within one run date).
CREATE OR REPLACE VIEW __SCHEMA__.v_customer_spend AS
WITH latest AS (
    SELECT customerid, MAX(insert_date) AS spend_as_of
    FROM __SCHEMA__.fact_movie_analytics
    GROUP BY customerid
),
spend AS (
    SELECT f.customerid, MAX(f.amount_spent) AS net_spend
    FROM __SCHEMA__.fact_movie_analytics f
    JOIN latest la ON la.customerid = f.customerid AND la.spend_as_of = f.insert_date
    GROUP BY f.customerid
),
reviews AS (
    SELECT customerid, SUM(review_count) AS reviews, SUM(review_score) AS positive_reviews
    FROM __SCHEMA__.fact_movie_analytics
    GROUP BY customerid
)
SELECT r.customerid,
       r.reviews,
       r.positive_reviews,
       s.net_spend,
       la.spend_as_of
FROM reviews r
JOIN spend s   ON s.customerid  = r.customerid
JOIN latest la ON la.customerid = r.customerid;
