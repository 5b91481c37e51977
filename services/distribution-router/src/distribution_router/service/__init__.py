"""distribution-router's use cases: routing (`routing`), the send job (`sending`), holds and
their attachments, the archive, the tenant's channel choices and suggestions (`channels`),
paper options and statistics. They take the repositories and partners of `ports`."""
