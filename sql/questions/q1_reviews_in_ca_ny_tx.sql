-- Question 1: How many reviews were done in California, NY and Texas?
-- One row per state (0 when it has none) and a Total row.
-- "Reviews" = SUM(review_count) over every fact row in the warehouse (all run dates).
-- Runs on PostgreSQL and Redshift; tables are resolved through the search_path.
WITH states AS (
    SELECT 'California' AS location, 1 AS sort_key
    UNION ALL SELECT 'New York', 2
    UNION ALL SELECT 'Texas', 3
),
per_state AS (
    SELECT s.location, s.sort_key, COALESCE(SUM(f.review_count), 0) AS reviews
    FROM states s
    LEFT JOIN dim_location l ON l.location = s.location
    LEFT JOIN fact_movie_analytics f ON f.id_dim_location = l.id_dim_location
    GROUP BY s.location, s.sort_key
)
SELECT location, reviews
FROM (
    SELECT location, reviews, sort_key FROM per_state
    UNION ALL
    SELECT 'Total', SUM(reviews), 99 FROM per_state
) answer
ORDER BY sort_key;
