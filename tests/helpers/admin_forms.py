"""What the admin's forms post, for tests that save through the admin."""


def agent_change_form(agent, **fields) -> dict:
    """What the admin's agent change form posts for `agent`, with `fields` on top. Checkboxes
    are sent only when ticked ("on"): leave one out to untick it."""
    return {
        "name": agent.name,
        "slug": agent.slug,
        "tagline": agent.tagline,
        "category": agent.category_id,
        "publisher": agent.publisher_id,
        "description": "",
        "tags": "[]",
        "version": "1.0.0",
        "homepage_url": "",
        "source_url": "",
        "published_at_0": "",
        "published_at_1": "",
        **fields,
    }
