-- A document its flow books that was deliberately not written (a cash receipt already paid
-- through Stripe): the reason, so its payment and any credit of it are not waited for.
ALTER TABLE bookings ADD COLUMN skipped_reason text;
