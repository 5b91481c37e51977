-- Header values are now stored base64-encoded (byte-exact); convert rows not yet published.
UPDATE outbox
SET headers = (
    SELECT coalesce(jsonb_agg(
               jsonb_build_array(h ->> 0,
                                 translate(encode(convert_to(h ->> 1, 'UTF8'), 'base64'),
                                           E'\n', ''))
               ORDER BY ord), '[]'::jsonb)
    FROM jsonb_array_elements(outbox.headers) WITH ORDINALITY AS t(h, ord)
)
WHERE sent_at IS NULL;
