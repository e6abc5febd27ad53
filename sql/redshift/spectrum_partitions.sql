-- The staging partitions of one run date, registered in the Spectrum external tables of
-- spectrum.sql, so that SELECT from them sees the run's staging data. Run by `emr-driver run`
-- after the warehouse load (outside a transaction: Redshift alters external tables only
-- outside one). ADD IF NOT EXISTS: a rerun of the date changes nothing.
--
-- Placeholders: ${external_schema} (see spectrum.sql), ${run_date} (YYYY-MM-DD) and, per
-- table, the folder the run published it in (the driver's plan: `emr-driver render` shows
-- them under "uris"), e.g. ${review_logs} = s3://<staging>/review_logs/dt=<run_date>.

ALTER TABLE ${external_schema}.classified_movie_review ADD IF NOT EXISTS PARTITION (dt = '${run_date}')
LOCATION '${classified_movie_review}/';

ALTER TABLE ${external_schema}.review_logs ADD IF NOT EXISTS PARTITION (dt = '${run_date}')
LOCATION '${review_logs}/';

ALTER TABLE ${external_schema}.fact_movie_analytics ADD IF NOT EXISTS PARTITION (dt = '${run_date}')
LOCATION '${fact_movie_analytics}/';

ALTER TABLE ${external_schema}.user_purchase ADD IF NOT EXISTS PARTITION (dt = '${run_date}')
LOCATION '${user_purchase}/';
