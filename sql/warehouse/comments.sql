-- A comment on every warehouse table, view and column, in the contract's words (DESIGN.md
-- 2.3), so a BI tool shows what each one means. Applied by every warehouse load after
-- views.sql, on PostgreSQL and Redshift as it is (`__SCHEMA__` = the warehouse schema). The
-- embedded SQLite warehouse has no COMMENT: the driver reads these same statements into its
-- `_column_comments` table (object, column, comment). One statement per line group, each
-- ending with `';`; a quote inside a comment is doubled.

COMMENT ON TABLE __SCHEMA__.dim_date IS 'Date dimension: one row per review date (log_date of the session log), id_dim_date = yyyymmdd; id 0 is the Unknown member (no log, or no date), with NULL parts.';
COMMENT ON COLUMN __SCHEMA__.dim_date.id_dim_date IS 'Surrogate key: the date as the integer yyyymmdd; 0 = Unknown.';
COMMENT ON COLUMN __SCHEMA__.dim_date.log_date IS 'The review date (logDate of the session log, MM-dd-yyyy in the vendor file); NULL for Unknown.';
COMMENT ON COLUMN __SCHEMA__.dim_date.day IS 'Day of the month of log_date (1-31); NULL for Unknown.';
COMMENT ON COLUMN __SCHEMA__.dim_date.month IS 'Month of log_date (1-12); NULL for Unknown.';
COMMENT ON COLUMN __SCHEMA__.dim_date.year IS 'Year of log_date; NULL for Unknown.';
COMMENT ON COLUMN __SCHEMA__.dim_date.season IS 'Season of log_date: Dec-Feb Winter, Mar-May Spring, Jun-Aug Summer, Sep-Nov Fall; Unknown for the Unknown member.';

COMMENT ON TABLE __SCHEMA__.dim_devices IS 'Device dimension: the device of the review session (Mobile, Tablet, Computer...). Ids are stable: a value keeps its id forever; id 0 = Unknown (NULL device or no log).';
COMMENT ON COLUMN __SCHEMA__.dim_devices.id_dim_devices IS 'Surrogate key, stable across runs; 0 = Unknown.';
COMMENT ON COLUMN __SCHEMA__.dim_devices.device IS 'The device element of the session log (natural key); Unknown for the Unknown member.';

COMMENT ON TABLE __SCHEMA__.dim_location IS 'Location dimension: the canonical US state name of the review session (vendor misspellings fixed), with its USPS code and US Census region. A location that is not a US state keeps its name with region Unknown. Id 0 = Unknown.';
COMMENT ON COLUMN __SCHEMA__.dim_location.id_dim_location IS 'Surrogate key, stable across runs; 0 = Unknown.';
COMMENT ON COLUMN __SCHEMA__.dim_location.location IS 'Canonical state name from the location element of the session log (natural key).';
COMMENT ON COLUMN __SCHEMA__.dim_location.state_code IS 'USPS two-letter state code; NULL or Unknown when the location is not a US state.';
COMMENT ON COLUMN __SCHEMA__.dim_location.region IS 'US Census region of the state: Northeast, Midwest, South or West (Unknown otherwise). East = Northeast + South, West = West in the analysts'' questions.';

COMMENT ON TABLE __SCHEMA__.dim_os IS 'Operating-system dimension of the review session (Apple MacOS, Apple iOS, Linux, Microsoft Windows, Google Android...). Ids are stable; id 0 = Unknown.';
COMMENT ON COLUMN __SCHEMA__.dim_os.id_dim_os IS 'Surrogate key, stable across runs; 0 = Unknown.';
COMMENT ON COLUMN __SCHEMA__.dim_os.os IS 'The os element of the session log (natural key).';

COMMENT ON TABLE __SCHEMA__.dim_browser IS 'Browser dimension of the review session: the browser element of the log when present, otherwise the default browser of the os (Windows: Microsoft Edge, Apple: Safari, Android: Google Chrome, Linux: Mozilla Firefox). Ids are stable; id 0 = Unknown.';
COMMENT ON COLUMN __SCHEMA__.dim_browser.id_dim_browser IS 'Surrogate key, stable across runs; 0 = Unknown.';
COMMENT ON COLUMN __SCHEMA__.dim_browser.browser IS 'Browser name (natural key).';

COMMENT ON TABLE __SCHEMA__.fact_movie_analytics IS 'Movie reviews with their sessions and the customer''s spend. Grain: one row per customer x review date x device x location x os x browser, over the reviews of one run joined to their logs. amount_spent is customer-level and repeated on each of the customer''s rows: sum it over distinct customers (v_customer_spend), never over rows.';
COMMENT ON COLUMN __SCHEMA__.fact_movie_analytics.customerid IS 'The customer id of the review (classified_movie_review.customer_id; same id space as user_purchase.customer_id).';
COMMENT ON COLUMN __SCHEMA__.fact_movie_analytics.id_dim_date IS 'Key of the review date in dim_date; 0 (Unknown) when the review has no log row.';
COMMENT ON COLUMN __SCHEMA__.fact_movie_analytics.id_dim_devices IS 'Key of the session device in dim_devices; 0 (Unknown) when the review has no log row.';
COMMENT ON COLUMN __SCHEMA__.fact_movie_analytics.id_dim_location IS 'Key of the session location in dim_location; 0 (Unknown) when the review has no log row.';
COMMENT ON COLUMN __SCHEMA__.fact_movie_analytics.id_dim_os IS 'Key of the session os in dim_os; 0 (Unknown) when the review has no log row.';
COMMENT ON COLUMN __SCHEMA__.fact_movie_analytics.id_dim_browser IS 'Key of the session browser in dim_browser; 0 (Unknown) when the review has no log row.';
COMMENT ON COLUMN __SCHEMA__.fact_movie_analytics.amount_spent IS 'The customer''s net spend: SUM(quantity * unit_price) over all of the customer''s user_purchase rows (returns included), 0 without purchases. Customer-level, repeated on each of the customer''s rows: sum it over distinct customers.';
COMMENT ON COLUMN __SCHEMA__.fact_movie_analytics.review_score IS 'SUM(positive_review) of the reviews in the row: how many contain the word good.';
COMMENT ON COLUMN __SCHEMA__.fact_movie_analytics.review_count IS 'COUNT(review_id) of the reviews in the row; SUM(review_count) over a run date is the number of classified reviews of that run.';
COMMENT ON COLUMN __SCHEMA__.fact_movie_analytics.insert_date IS 'The run date (logical date of the nightly run, not the wall clock); a rerun of a date replaces its rows.';

COMMENT ON VIEW __SCHEMA__.v_fact_movie_analytics IS 'fact_movie_analytics with every dimension''s values by name, one row per fact row. amount_spent is repeated on each of a customer''s rows: for spend use v_customer_spend.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.customerid IS 'The customer id of the review.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.insert_date IS 'The run date that loaded the row.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.id_dim_date IS 'Key of the review date (yyyymmdd; 0 = Unknown).';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.log_date IS 'The review date; NULL when unknown.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.day IS 'Day of the month of the review date.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.month IS 'Month of the review date.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.year IS 'Year of the review date.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.season IS 'Season of the review date (Winter, Spring, Summer, Fall, Unknown).';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.id_dim_devices IS 'Key of the device (0 = Unknown).';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.device IS 'Device of the review session.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.id_dim_location IS 'Key of the location (0 = Unknown).';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.location IS 'Canonical US state name of the review session.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.state_code IS 'USPS state code.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.region IS 'US Census region (Northeast, Midwest, South, West, Unknown).';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.id_dim_os IS 'Key of the os (0 = Unknown).';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.os IS 'Operating system of the review session.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.id_dim_browser IS 'Key of the browser (0 = Unknown).';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.browser IS 'Browser of the review session.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.review_count IS 'Number of reviews in the row: SUM it for review counts.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.review_score IS 'Number of positive reviews (containing the word good) in the row: SUM it.';
COMMENT ON COLUMN __SCHEMA__.v_fact_movie_analytics.amount_spent IS 'The customer''s net spend, repeated on each of the customer''s rows: do not SUM it; use v_customer_spend.net_spend.';

COMMENT ON VIEW __SCHEMA__.v_customer_spend IS 'One row per customer, so a SUM of any column is right: reviews and positive reviews over every run date, and the net spend as of the customer''s latest run date.';
COMMENT ON COLUMN __SCHEMA__.v_customer_spend.customerid IS 'The customer id.';
COMMENT ON COLUMN __SCHEMA__.v_customer_spend.reviews IS 'The customer''s reviews over every run date in the warehouse (SUM of review_count).';
COMMENT ON COLUMN __SCHEMA__.v_customer_spend.positive_reviews IS 'The customer''s positive reviews, containing the word good (SUM of review_score).';
COMMENT ON COLUMN __SCHEMA__.v_customer_spend.net_spend IS 'The customer''s net spend, SUM(quantity * unit_price) over all purchases (returns included, 0 without purchases), as of spend_as_of: once per customer, so SUM(net_spend) is the total spend of the reviewing customers.';
COMMENT ON COLUMN __SCHEMA__.v_customer_spend.spend_as_of IS 'The latest run date of the customer, whose user_purchase snapshot gave net_spend.';
