"""FineFoundry's db.scraped_data: scrape sessions and their pairs."""

from storage.api import (
    add_scraped_pairs,
    create_scrape_session,
    delete_scrape_session,
    export_session_to_json,
    get_all_pairs,
    get_pairs_for_session,
    get_random_prompts_for_session,
    get_scrape_session,
    get_total_pair_count,
    list_scrape_sessions,
)

__all__ = [
    "add_scraped_pairs",
    "create_scrape_session",
    "delete_scrape_session",
    "export_session_to_json",
    "get_all_pairs",
    "get_pairs_for_session",
    "get_random_prompts_for_session",
    "get_scrape_session",
    "get_total_pair_count",
    "list_scrape_sessions",
]
