-- Question 5: Which device is the most used to write reviews in the east, and which in the
-- west?
-- East and west come from dim_location.region, the US Census region of the state:
--   East = Northeast + South (the Atlantic side, from Maine to Florida and Texas),
--   West = West (Mountain + Pacific).
-- The Midwest is neither east nor west and is left out, as are Unknown locations; the
-- Unknown device is not a device. Ties are all returned.
WITH per_side AS (
    SELECT CASE WHEN l.region IN ('Northeast', 'South') THEN 'East' ELSE 'West' END AS side,
           d.device,
           SUM(f.review_count) AS reviews
    FROM fact_movie_analytics f
    JOIN dim_location l ON l.id_dim_location = f.id_dim_location
    JOIN dim_devices d  ON d.id_dim_devices  = f.id_dim_devices
    WHERE l.region IN ('Northeast', 'South', 'West')
      AND d.id_dim_devices <> 0
    GROUP BY 1, 2
),
best AS (
    SELECT side, MAX(reviews) AS reviews FROM per_side GROUP BY side
)
SELECT p.side, p.device, p.reviews
FROM per_side p
JOIN best b ON b.side = p.side AND b.reviews = p.reviews
ORDER BY p.side, p.device;
