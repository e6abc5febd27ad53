-- Question 3: Which location has the most reviews from a computer in a Chrome browser?
-- device 'Computer' and browser 'Google Chrome'; the Unknown location is not a location.
-- Ties are all returned (alphabetical); no row when there is no such review.
WITH per_location AS (
    SELECT l.location, SUM(f.review_count) AS reviews
    FROM fact_movie_analytics f
    JOIN dim_location l ON l.id_dim_location = f.id_dim_location
    JOIN dim_devices d  ON d.id_dim_devices  = f.id_dim_devices
    JOIN dim_browser b  ON b.id_dim_browser  = f.id_dim_browser
    WHERE d.device = 'Computer'
      AND b.browser = 'Google Chrome'
      AND l.id_dim_location <> 0
    GROUP BY l.location
)
SELECT location, reviews
FROM per_location
WHERE reviews = (SELECT MAX(reviews) FROM per_location)
ORDER BY location;
