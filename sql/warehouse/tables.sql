-- The warehouse: five dimensions and the fact (DESIGN.md 2.3, docs/architecture.md
-- "Warehouse tables"). Runs on PostgreSQL and on Redshift (which accepts but does not enforce
-- PRIMARY KEY / UNIQUE: the driver checks ids itself before loading).
-- `__SCHEMA__` is replaced by the warehouse schema (a checked identifier).
--
-- Every dimension has an `Unknown` member with id 0 (written by build_dimensions).
-- Ids are stable: the natural key (the value) keeps its id forever.

CREATE SCHEMA IF NOT EXISTS __SCHEMA__;

CREATE TABLE IF NOT EXISTS __SCHEMA__.dim_date (
    id_dim_date int         NOT NULL PRIMARY KEY,   -- yyyymmdd; 0 = Unknown
    log_date    date        UNIQUE,                 -- NULL for Unknown
    day         int,
    month       int,
    year        int,
    season      varchar(16) NOT NULL                -- Winter / Spring / Summer / Fall / Unknown
);

CREATE TABLE IF NOT EXISTS __SCHEMA__.dim_devices (
    id_dim_devices int         NOT NULL PRIMARY KEY,
    device         varchar(64) NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS __SCHEMA__.dim_location (
    id_dim_location int         NOT NULL PRIMARY KEY,
    location        varchar(64) NOT NULL UNIQUE,
    state_code      varchar(2),                     -- USPS code; NULL for Unknown
    region          varchar(16) NOT NULL            -- US Census region: Northeast / Midwest / South / West / Unknown
);

CREATE TABLE IF NOT EXISTS __SCHEMA__.dim_os (
    id_dim_os int         NOT NULL PRIMARY KEY,
    os        varchar(64) NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS __SCHEMA__.dim_browser (
    id_dim_browser int         NOT NULL PRIMARY KEY,
    browser        varchar(64) NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS __SCHEMA__.fact_movie_analytics (
    customerid      int            NOT NULL,
    id_dim_date     int            NOT NULL,
    id_dim_devices  int            NOT NULL,
    id_dim_location int            NOT NULL,
    id_dim_os       int            NOT NULL,
    id_dim_browser  int            NOT NULL,
    amount_spent    decimal(18,5)  NOT NULL,
    review_score    bigint         NOT NULL,
    review_count    bigint         NOT NULL,
    insert_date     date           NOT NULL,        -- the run date; a rerun replaces its rows
    -- Informational on Redshift (not enforced); enforced by PostgreSQL and SQLite. Tables made
    -- before these keys existed get them from the driver (PostgreSQL: ALTER TABLE ... ADD).
    FOREIGN KEY (id_dim_date)     REFERENCES __SCHEMA__.dim_date (id_dim_date),
    FOREIGN KEY (id_dim_devices)  REFERENCES __SCHEMA__.dim_devices (id_dim_devices),
    FOREIGN KEY (id_dim_location) REFERENCES __SCHEMA__.dim_location (id_dim_location),
    FOREIGN KEY (id_dim_os)       REFERENCES __SCHEMA__.dim_os (id_dim_os),
    FOREIGN KEY (id_dim_browser)  REFERENCES __SCHEMA__.dim_browser (id_dim_browser)
);
