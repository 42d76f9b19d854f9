"""One way to write a time on every console page (lists, record pages, timelines, the
banner): ISO order with the zone, to the second. Staff compare times across pages, logs and
partners' reports during an incident; three formats on three pages cost them minutes."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = DATE_FORMAT
TIME_FORMAT = "H:i:s"
