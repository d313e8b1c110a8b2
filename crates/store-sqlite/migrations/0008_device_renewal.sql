-- Certificate renewal: a device reporting while its certificate nears its end is given a new
-- one for the same key. Until the device shows the new certificate, both are its own, so an
-- agent that failed to store the new one (a crash, a full disk) is not locked out.
ALTER TABLE devices ADD COLUMN next_certificate_sha256 TEXT;
ALTER TABLE devices ADD COLUMN next_certificate_not_after TEXT;
-- Sent again with every report until the device shows it (its public part only).
ALTER TABLE devices ADD COLUMN next_certificate_pem TEXT;
CREATE UNIQUE INDEX devices_by_next_certificate ON devices (next_certificate_sha256)
    WHERE next_certificate_sha256 IS NOT NULL;
