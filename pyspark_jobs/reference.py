"""Reference data the jobs rely on, each kept in exactly one table.

- `US_STATES`: the 50 states and the District of Columbia with their USPS codes and US
  Census regions (Northeast, Midwest, South, West).
- `LOCATION_MISSPELLINGS`: the vendor's known misspellings of state names.
- `DEFAULT_BROWSER_BY_OS`: the platform's default browser, used when a log has no
  `<browser>` element.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from pyspark_jobs.sql_text import array_literal, map_literal

NORTHEAST, MIDWEST, SOUTH, WEST = "Northeast", "Midwest", "South", "West"

# (canonical name, USPS code, Census region)
US_STATES: tuple[tuple[str, str, str], ...] = (
    ("Alabama", "AL", SOUTH),
    ("Alaska", "AK", WEST),
    ("Arizona", "AZ", WEST),
    ("Arkansas", "AR", SOUTH),
    ("California", "CA", WEST),
    ("Colorado", "CO", WEST),
    ("Connecticut", "CT", NORTHEAST),
    ("Delaware", "DE", SOUTH),
    ("District of Columbia", "DC", SOUTH),
    ("Florida", "FL", SOUTH),
    ("Georgia", "GA", SOUTH),
    ("Hawaii", "HI", WEST),
    ("Idaho", "ID", WEST),
    ("Illinois", "IL", MIDWEST),
    ("Indiana", "IN", MIDWEST),
    ("Iowa", "IA", MIDWEST),
    ("Kansas", "KS", MIDWEST),
    ("Kentucky", "KY", SOUTH),
    ("Louisiana", "LA", SOUTH),
    ("Maine", "ME", NORTHEAST),
    ("Maryland", "MD", SOUTH),
    ("Massachusetts", "MA", NORTHEAST),
    ("Michigan", "MI", MIDWEST),
    ("Minnesota", "MN", MIDWEST),
    ("Mississippi", "MS", SOUTH),
    ("Missouri", "MO", MIDWEST),
    ("Montana", "MT", WEST),
    ("Nebraska", "NE", MIDWEST),
    ("Nevada", "NV", WEST),
    ("New Hampshire", "NH", NORTHEAST),
    ("New Jersey", "NJ", NORTHEAST),
    ("New Mexico", "NM", WEST),
    ("New York", "NY", NORTHEAST),
    ("North Carolina", "NC", SOUTH),
    ("North Dakota", "ND", MIDWEST),
    ("Ohio", "OH", MIDWEST),
    ("Oklahoma", "OK", SOUTH),
    ("Oregon", "OR", WEST),
    ("Pennsylvania", "PA", NORTHEAST),
    ("Rhode Island", "RI", NORTHEAST),
    ("South Carolina", "SC", SOUTH),
    ("South Dakota", "SD", MIDWEST),
    ("Tennessee", "TN", SOUTH),
    ("Texas", "TX", SOUTH),
    ("Utah", "UT", WEST),
    ("Vermont", "VT", NORTHEAST),
    ("Virginia", "VA", SOUTH),
    ("Washington", "WA", WEST),
    ("West Virginia", "WV", SOUTH),
    ("Wisconsin", "WI", MIDWEST),
    ("Wyoming", "WY", WEST),
)

# The vendor's misspelling -> the canonical state name. The one place to add a new one.
LOCATION_MISSPELLINGS: dict[str, str] = {
    "Pensylvania": "Pennsylvania",
    "Lousiana": "Louisiana",
    "Massachussets": "Massachusetts",
}

# The platform's default browser, for logs without a `<browser>` element.
DEFAULT_BROWSER_BY_OS: dict[str, str] = {
    "Microsoft Windows": "Microsoft Edge",
    "Apple MacOS": "Safari",
    "Apple iOS": "Safari",
    "Google Android": "Google Chrome",
    "Linux": "Mozilla Firefox",
}


def canonical_location_by_key() -> dict[str, str]:
    """lower-case name or misspelling -> canonical state name."""
    table = {name.lower(): name for name, _, _ in US_STATES}
    for wrong, right in LOCATION_MISSPELLINGS.items():
        table[wrong.lower()] = right
    return table


def canonical_location(location: Column) -> Column:
    """The canonical state name (case and surrounding blanks ignored, misspellings fixed);
    an unrecognised location is kept as it is (trimmed)."""
    trimmed = F.trim(location)
    return F.coalesce(map_literal(canonical_location_by_key())[F.lower(trimmed)], trimmed)


def is_known_location(canonical: Column) -> Column:
    return F.array_contains(array_literal(name for name, _, _ in US_STATES), canonical)


def default_browser(os: Column) -> Column:
    """The default browser of `os`; NULL for an OS not in the table."""
    return map_literal(DEFAULT_BROWSER_BY_OS)[os]


def state_code(canonical: Column) -> Column:
    return map_literal({name: code for name, code, _ in US_STATES})[canonical]


def census_region(canonical: Column) -> Column:
    return map_literal({name: region for name, _, region in US_STATES})[canonical]
