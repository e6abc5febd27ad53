-- Question 2: ... of the reviews in California, NY and Texas, how many were written with an
-- Apple device? And how many for each device type?
-- "Apple device" = os 'Apple MacOS' or 'Apple iOS'. One row per device type that has Apple
-- reviews in those states, then a Total row (all Apple reviews in the three states).
WITH apple AS (
    SELECT d.device, SUM(f.review_count) AS reviews
    FROM fact_movie_analytics f
    JOIN dim_location l ON l.id_dim_location = f.id_dim_location
    JOIN dim_os o       ON o.id_dim_os       = f.id_dim_os
    JOIN dim_devices d  ON d.id_dim_devices  = f.id_dim_devices
    WHERE l.location IN ('California', 'New York', 'Texas')
      AND o.os IN ('Apple MacOS', 'Apple iOS')
    GROUP BY d.device
)
SELECT device, reviews
FROM (
    SELECT device, reviews, 1 AS sort_key FROM apple
    UNION ALL
    SELECT 'Total', COALESCE(SUM(reviews), 0), 2 FROM apple
) answer
ORDER BY sort_key, device;
