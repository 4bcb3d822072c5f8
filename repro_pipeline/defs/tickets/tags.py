"""The tags a ticket's run carries: the ticket's run sensors, the handoff and the sweep read them back."""

TICKET_URL_TAG = "repro/ticket_url"
TICKET_NUMBER_TAG = "repro/ticket_number"
TICKET_AUTHOR_TAG = "repro/ticket_author"
TICKET_REPOSITORY_TAG = "repro/ticket_repository"
