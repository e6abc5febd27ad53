-- The staging partitions of one run date, registered in the Spectrum external tables of
-- spectrum.sql, so that SELECT from them sees the run's staging data. Run by `emr-driver run`
-- after the warehouse load (outside a transaction: Redshift alters external tables only
-- outside one). Each run writes its own folders (`<table>/dt=D/run=<run id>/`) and the date's
-- pointer `_published/dt=D.json` names the published run: the partition is added when absent,
-- then pointed at the published run's folder (SET LOCATION), so a query of the date never
-- mixes two runs and never reads a run that was not published. A rerun of the same run sets
-- the same location again.
--
-- Placeholders: ${external_schema} (see spectrum.sql), ${run_date} (YYYY-MM-DD) and, per
-- table, the folder the published run wrote it in (the pointer's `outputs`), e.g.
-- ${review_logs} = s3://<staging>/review_logs/dt=<run_date>/run=<run id>.

ALTER TABLE ${external_schema}.classified_movie_review ADD IF NOT EXISTS PARTITION (dt = '${run_date}')
LOCATION '${classified_movie_review}/';
ALTER TABLE ${external_schema}.classified_movie_review PARTITION (dt = '${run_date}')
SET LOCATION '${classified_movie_review}/';

ALTER TABLE ${external_schema}.review_logs ADD IF NOT EXISTS PARTITION (dt = '${run_date}')
LOCATION '${review_logs}/';
ALTER TABLE ${external_schema}.review_logs PARTITION (dt = '${run_date}')
SET LOCATION '${review_logs}/';

ALTER TABLE ${external_schema}.fact_movie_analytics ADD IF NOT EXISTS PARTITION (dt = '${run_date}')
LOCATION '${fact_movie_analytics}/';
ALTER TABLE ${external_schema}.fact_movie_analytics PARTITION (dt = '${run_date}')
SET LOCATION '${fact_movie_analytics}/';

ALTER TABLE ${external_schema}.user_purchase ADD IF NOT EXISTS PARTITION (dt = '${run_date}')
LOCATION '${user_purchase}/';
ALTER TABLE ${external_schema}.user_purchase PARTITION (dt = '${run_date}')
SET LOCATION '${user_purchase}/';
