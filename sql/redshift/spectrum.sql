-- Redshift Spectrum over the staging layer (DESIGN.md 2.4): an external schema backed by the
-- Glue Data Catalog, and external tables over the Parquet folders the jobs write
-- (docs/architecture.md, "Lake layout"). Ad-hoc queries read S3 directly; nothing is copied.
-- `emr-driver run` (warehouse.kind = redshift, warehouse.glue_database set) runs this file after
-- the load, outside its transaction (Redshift runs CREATE EXTERNAL TABLE only outside one), and
-- skips a table that SVV_EXTERNAL_TABLES already lists (CREATE EXTERNAL TABLE has no IF NOT EXISTS).
--
-- Placeholders (rendered by Terraform's templatefile() or by hand; none is a secret):
--   ${external_schema}  the schema name in Redshift, e.g. staging
--   ${glue_database}    the Glue database, e.g. movie_analytics_staging
--   ${spectrum_role_arn} the IAM role Redshift assumes to read S3 and Glue
--                        (arn:aws:iam::<account>:role/<name>)
--   ${staging_bucket}   the staging bucket name
--
-- Column types follow the jobs' Parquet schemas (Spark IntegerType = int, LongType = bigint,
-- DecimalType(18,5) = decimal(18,5), DateType = date); Spectrum refuses a mismatch, so change
-- both together. Every table is partitioned by the run date folder `dt=YYYY-MM-DD`.

CREATE EXTERNAL SCHEMA IF NOT EXISTS ${external_schema}
FROM DATA CATALOG
DATABASE '${glue_database}'
IAM_ROLE '${spectrum_role_arn}'
CREATE EXTERNAL DATABASE IF NOT EXISTS;

CREATE EXTERNAL TABLE ${external_schema}.classified_movie_review (
    customer_id     int,
    review_id       int,
    positive_review int,
    insert_date     date
)
PARTITIONED BY (dt varchar(10))
STORED AS PARQUET
LOCATION 's3://${staging_bucket}/classified_movie_review/';

CREATE EXTERNAL TABLE ${external_schema}.review_logs (
    log_id       int,
    log_date     date,
    device       varchar(64),
    os           varchar(64),
    location     varchar(64),
    browser      varchar(64),
    ip           varchar(64),
    phone_number varchar(64),
    insert_date  date
)
PARTITIONED BY (dt varchar(10))
STORED AS PARQUET
LOCATION 's3://${staging_bucket}/review_logs/';

CREATE EXTERNAL TABLE ${external_schema}.fact_movie_analytics (
    customerid      int,
    id_dim_date     int,
    id_dim_devices  int,
    id_dim_location int,
    id_dim_os       int,
    id_dim_browser  int,
    amount_spent    decimal(18,5),
    review_score    bigint,
    review_count    bigint,
    insert_date     date
)
PARTITIONED BY (dt varchar(10))
STORED AS PARQUET
LOCATION 's3://${staging_bucket}/fact_movie_analytics/';

-- The user_purchase export (gzip CSV with a header). OpenCSVSerde reads every field as text
-- (an empty field, NULL in the export, reads as ''), so the columns are varchar: cast in the
-- query, e.g. CAST(NULLIF(customer_id, '') AS int), CAST(invoice_date AS timestamp).
CREATE EXTERNAL TABLE ${external_schema}.user_purchase (
    invoice_number varchar(10),
    stock_code     varchar(20),
    detail         varchar(1000),
    quantity       varchar(16),
    invoice_date   varchar(19),
    unit_price     varchar(16),
    customer_id    varchar(16),
    country        varchar(20)
)
PARTITIONED BY (dt varchar(10))
ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'
WITH SERDEPROPERTIES ('separatorChar' = ',', 'quoteChar' = '"', 'escapeChar' = '\\')
STORED AS TEXTFILE
LOCATION 's3://${staging_bucket}/user_purchase/'
TABLE PROPERTIES ('skip.header.line.count' = '1');

-- Every run registers its dt=D partitions of these tables: spectrum_partitions.sql, run by
-- `emr-driver run` after the warehouse load (driver/src/db/redshift.rs).
