"""The demo database: seeding, and the content it is made of."""
