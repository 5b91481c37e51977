-- Each connection's flow: what happens to its documents (stamped on every event it emits).
-- The defaults keep what every connection did before: factored and distributed, booked nowhere.
ALTER TABLE connections
    ADD COLUMN flow_book_into text,
    ADD COLUMN flow_factor boolean NOT NULL DEFAULT true,
    ADD COLUMN flow_distribute boolean NOT NULL DEFAULT true;
