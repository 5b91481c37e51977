"""A factoring company's file reception: SFTP and an HTTPS API, receipts, settlements."""
