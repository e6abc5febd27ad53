-- Question 4: Which states have the most and the fewest reviews in 2021?
-- 2021 = the year of the review's log_date (dim_date.year). Every state the warehouse knows
-- (dim_location, without the Unknown member) takes part, with 0 when it has no 2021 review,
-- so "fewest" can be a state with none. Ties are all returned.
WITH reviews_2021 AS (
    SELECT f.id_dim_location, SUM(f.review_count) AS reviews
    FROM fact_movie_analytics f
    JOIN dim_date dt ON dt.id_dim_date = f.id_dim_date
    WHERE dt.year = 2021
    GROUP BY f.id_dim_location
),
per_state AS (
    SELECT l.location, COALESCE(r.reviews, 0) AS reviews
    FROM dim_location l
    LEFT JOIN reviews_2021 r ON r.id_dim_location = l.id_dim_location
    WHERE l.id_dim_location <> 0
)
SELECT rank, location, reviews
FROM (
    SELECT 'most' AS rank, 1 AS sort_key, location, reviews
    FROM per_state WHERE reviews = (SELECT MAX(reviews) FROM per_state)
    UNION ALL
    SELECT 'fewest', 2, location, reviews
    FROM per_state WHERE reviews = (SELECT MIN(reviews) FROM per_state)
) answer
ORDER BY sort_key, location;
