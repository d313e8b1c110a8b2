//! Enrolled devices as rows: one-time enrolment codes, the device registry, reports, detections,
//! and the alerts they raise with each delivery attempt.
//!
//! Which report is compliant and what deserves an alert is decided by the server (with the
//! `posture` crate); this module only keeps the facts and answers "was this seen before?".

use rusqlite::{OptionalExtension, Row, params};

use crate::{Database, Error};

/// A device about to be registered by an enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    /// The device's identifier (also in its certificate).
    pub id: String,
    /// SHA-256 of the issued certificate's DER form, hex.
    pub certificate_sha256: String,
    /// When the certificate stops being valid.
    pub certificate_not_after: String,
    /// The host name the agent gave.
    pub hostname: String,
    /// `windows`, `macos` or `linux`.
    pub os_family: String,
    /// The OS product name.
    pub os_name: String,
    /// The OS version.
    pub os_version: String,
}

/// What became of an enrolment code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolment {
    /// The code was good: the device is registered to the user the code was made for.
    Enrolled {
        /// The device's owner.
        owner: String,
    },
    /// No such code.
    Unknown,
    /// The code was used already.
    Used,
    /// The code is past its expiry.
    Expired,
}

/// A device in the registry with its current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    /// Identifier.
    pub id: String,
    /// The user the device belongs to.
    pub owner: String,
    /// SHA-256 of its certificate, hex.
    pub certificate_sha256: String,
    /// When that certificate ends (RFC 3339 UTC).
    pub certificate_not_after: String,
    /// A renewed certificate the device has been given but not shown yet, if any.
    pub next_certificate_sha256: Option<String>,
    /// That certificate (PEM), sent again until the device shows it.
    pub next_certificate_pem: Option<String>,
    /// Host name (from the latest report).
    pub hostname: String,
    /// OS family.
    pub os_family: String,
    /// OS name.
    pub os_name: String,
    /// OS version.
    pub os_version: String,
    /// When it was enrolled.
    pub enrolled_at: String,
    /// When an administrator revoked it, if one did.
    pub revoked_at: Option<String>,
    /// When its latest report arrived.
    pub last_seen_at: Option<String>,
    /// When its latest report was collected on the device.
    pub last_collected_at: Option<String>,
    /// The latest report's verdict; `None` before the first report.
    pub compliant: Option<bool>,
    /// The latest report's failures as JSON.
    pub failures: String,
}

/// One report to store, with the server's verdict on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    /// The device (from its certificate).
    pub device_id: String,
    /// When the agent collected it.
    pub collected_at: String,
    /// When it arrived.
    pub received_at: String,
    /// Host name it gave.
    pub hostname: String,
    /// OS family.
    pub os_family: String,
    /// OS name.
    pub os_name: String,
    /// OS version.
    pub os_version: String,
    /// The verdict.
    pub compliant: bool,
    /// The failures as JSON.
    pub failures: String,
    /// The report as received (JSON).
    pub report: String,
}

/// What storing a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredReport {
    /// Stored; `previously_compliant` is the device's verdict before this report (`None` when
    /// it had none), `current` whether this report became the device's current state (a
    /// report older than the latest one is kept in the history only).
    Stored {
        /// The device's verdict before this report.
        previously_compliant: Option<bool>,
        /// Whether the device's current state now comes from this report.
        current: bool,
    },
    /// The same device and collection time was stored before.
    Duplicate,
}

/// A detection a device listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectionRow {
    /// The device.
    pub device_id: String,
    /// The antivirus's stable identifier for it.
    pub detection_id: String,
    /// When genkan first saw it.
    pub first_seen_at: String,
    /// When the antivirus detected it.
    pub detected_at: String,
    /// The threat's name.
    pub threat: String,
    /// The file, if any.
    pub path: Option<String>,
    /// What became of it (as in the latest report that listed it first).
    pub action: String,
}

/// An alert to raise once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// Alerts with the same key are one alert.
    pub dedupe_key: String,
    /// `detection`, `noncompliant`, `virus_found`.
    pub kind: String,
    /// The device concerned, if any.
    pub device_id: Option<String>,
    /// When it was raised.
    pub created_at: String,
    /// A one-line subject.
    pub subject: String,
    /// The plain-text message.
    pub body: String,
    /// The JSON the webhook receives.
    pub payload: String,
    /// Whether an e-mail is to be sent.
    pub email: bool,
    /// Whether a webhook is to be called.
    pub webhook: bool,
}

/// An alert with deliveries still to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    /// Identifier.
    pub id: i64,
    /// Kind.
    pub kind: String,
    /// The device concerned, if any.
    pub device_id: Option<String>,
    /// When it was raised.
    pub created_at: String,
    /// Subject.
    pub subject: String,
    /// Plain-text message.
    pub body: String,
    /// Webhook JSON.
    pub payload: String,
    /// The e-mail is still to be sent.
    pub email_pending: bool,
    /// The webhook is still to be called.
    pub webhook_pending: bool,
    /// Delivery rounds so far.
    pub attempts: u32,
}

const DEVICE_COLUMNS: &str = "d.id, u.name, d.certificate_sha256, d.hostname, d.os_family, d.os_name, \
     d.os_version, d.enrolled_at, d.revoked_at, d.last_seen_at, d.last_collected_at, d.compliant, d.failures, \
     d.certificate_not_after, d.next_certificate_sha256, d.next_certificate_pem";

fn read_device(row: &Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok(DeviceRow {
        id: row.get(0)?,
        owner: row.get(1)?,
        certificate_sha256: row.get(2)?,
        hostname: row.get(3)?,
        os_family: row.get(4)?,
        os_name: row.get(5)?,
        os_version: row.get(6)?,
        enrolled_at: row.get(7)?,
        revoked_at: row.get(8)?,
        last_seen_at: row.get(9)?,
        last_collected_at: row.get(10)?,
        compliant: row.get(11)?,
        failures: row.get(12)?,
        certificate_not_after: row.get(13)?,
        next_certificate_sha256: row.get(14)?,
        next_certificate_pem: row.get(15)?,
    })
}

fn read_alert(row: &Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: row.get(0)?,
        kind: row.get(1)?,
        device_id: row.get(2)?,
        created_at: row.get(3)?,
        subject: row.get(4)?,
        body: row.get(5)?,
        payload: row.get(6)?,
        email_pending: row.get(7)?,
        webhook_pending: row.get(8)?,
        attempts: row.get(9)?,
    })
}

const ALERT_COLUMNS: &str = "id, kind, device_id, created_at, subject, body, payload, email_pending, webhook_pending, attempts";

impl Database {
    /// Stores a new enrolment code (its hash) for `user`.
    pub fn create_enrolment_code(
        &self,
        code_hash: &str,
        user: &str,
        created_by: &str,
        now: &str,
        expires_at: &str,
    ) -> Result<(), Error> {
        let changed = self.connection.execute(
            "INSERT INTO enrolment_codes (code_hash, user_id, created_by, created_at, expires_at) \
             SELECT ?1, id, ?3, ?4, ?5 FROM users WHERE name = ?2",
            params![code_hash, user, created_by, now, expires_at],
        )?;
        if changed == 0 {
            return Err(Error::NotFound {
                kind: "user",
                name: user.to_owned(),
            });
        }
        Ok(())
    }

    /// Uses an enrolment code and registers the device, in one transaction: the code works
    /// once, before its expiry, and the device belongs to the user it was made for.
    pub fn enrol_device(
        &mut self,
        code_hash: &str,
        now: &str,
        device: &NewDevice,
    ) -> Result<Enrolment, Error> {
        let transaction = self.connection.transaction()?;
        let code: Option<(i64, String, Option<String>, String)> = transaction
            .query_row(
                "SELECT c.user_id, u.name, c.used_at, c.expires_at FROM enrolment_codes c \
                 JOIN users u ON u.id = c.user_id WHERE c.code_hash = ?1",
                [code_hash],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()?;
        let Some((user_id, owner, used_at, expires_at)) = code else {
            return Ok(Enrolment::Unknown);
        };
        if used_at.is_some() {
            return Ok(Enrolment::Used);
        }
        if expires_at.as_str() <= now {
            return Ok(Enrolment::Expired);
        }
        transaction.execute(
            "UPDATE enrolment_codes SET used_at = ?2, device_id = ?3 WHERE code_hash = ?1",
            params![code_hash, now, device.id],
        )?;
        transaction.execute(
            "INSERT INTO devices (id, owner_id, certificate_sha256, certificate_not_after, hostname, \
             os_family, os_name, os_version, enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                device.id,
                user_id,
                device.certificate_sha256,
                device.certificate_not_after,
                device.hostname,
                device.os_family,
                device.os_name,
                device.os_version,
                now
            ],
        )?;
        transaction.commit()?;
        Ok(Enrolment::Enrolled { owner })
    }

    /// The device with this identifier.
    pub fn device(&self, id: &str) -> Result<Option<DeviceRow>, Error> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d JOIN users u ON u.id = d.owner_id WHERE d.id = ?1"
        );
        Ok(self
            .connection
            .prepare_cached(&sql)?
            .query_row([id], read_device)
            .optional()?)
    }

    /// The device whose certificate has this SHA-256 (checked on every request with one).
    pub fn device_by_certificate(&self, sha256: &str) -> Result<Option<DeviceRow>, Error> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d JOIN users u ON u.id = d.owner_id \
             WHERE d.certificate_sha256 = ?1 OR d.next_certificate_sha256 = ?1"
        );
        Ok(self
            .connection
            .prepare_cached(&sql)?
            .query_row([sha256], read_device)
            .optional()?)
    }

    /// Every device, by owner then host name.
    pub fn devices(&self) -> Result<Vec<DeviceRow>, Error> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d JOIN users u ON u.id = d.owner_id \
             ORDER BY u.name, d.hostname, d.id"
        );
        let mut statement = self.connection.prepare(&sql)?;
        let rows = statement.query_map([], read_device)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a renewed certificate given to a device; its current one stays valid until the
    /// device shows the new one ([`Self::promote_device_certificate`]).
    pub fn set_next_device_certificate(
        &self,
        id: &str,
        sha256: &str,
        not_after: &str,
        pem: &str,
    ) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE devices SET next_certificate_sha256 = ?2, next_certificate_not_after = ?3, \
             next_certificate_pem = ?4 WHERE id = ?1",
            params![id, sha256, not_after, pem],
        )?;
        Ok(())
    }

    /// The device showed its renewed certificate: from now on only that one is its own.
    pub fn promote_device_certificate(&self, id: &str, sha256: &str) -> Result<bool, Error> {
        Ok(self.connection.execute(
            "UPDATE devices SET certificate_sha256 = next_certificate_sha256, \
             certificate_not_after = next_certificate_not_after, \
             next_certificate_sha256 = NULL, next_certificate_not_after = NULL, \
             next_certificate_pem = NULL \
             WHERE id = ?1 AND next_certificate_sha256 = ?2",
            params![id, sha256],
        )? == 1)
    }

    /// Revokes a device; `false` when there is no such device or it was revoked already.
    pub fn revoke_device(&self, id: &str, by: &str, now: &str) -> Result<bool, Error> {
        Ok(self.connection.execute(
            "UPDATE devices SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now, by],
        )? == 1)
    }

    /// Stores a report and, when it is the newest, makes it the device's current state.
    pub fn store_report(&mut self, report: &ReportRow) -> Result<StoredReport, Error> {
        let transaction = self.connection.transaction()?;
        let inserted = transaction.execute(
            "INSERT OR IGNORE INTO device_reports (device_id, collected_at, received_at, compliant, failures, report) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                report.device_id,
                report.collected_at,
                report.received_at,
                report.compliant,
                report.failures,
                report.report
            ],
        )?;
        if inserted == 0 {
            return Ok(StoredReport::Duplicate);
        }
        let previously_compliant: Option<bool> = transaction.query_row(
            "SELECT compliant FROM devices WHERE id = ?1",
            [&report.device_id],
            |row| row.get(0),
        )?;
        let current = transaction.execute(
            "UPDATE devices SET last_seen_at = ?2, last_collected_at = ?3, compliant = ?4, failures = ?5, \
             hostname = ?6, os_family = ?7, os_name = ?8, os_version = ?9 \
             WHERE id = ?1 AND (last_collected_at IS NULL OR last_collected_at < ?3)",
            params![
                report.device_id,
                report.received_at,
                report.collected_at,
                report.compliant,
                report.failures,
                report.hostname,
                report.os_family,
                report.os_name,
                report.os_version
            ],
        )? == 1;
        transaction.commit()?;
        Ok(StoredReport::Stored {
            previously_compliant,
            current,
        })
    }

    /// The number of reports stored for a device.
    pub fn report_count(&self, device_id: &str) -> Result<u64, Error> {
        let count: i64 = self.connection.query_row(
            "SELECT count(*) FROM device_reports WHERE device_id = ?1",
            [device_id],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Records a detection; `true` when this device had not listed it before.
    pub fn record_detection(&self, detection: &DetectionRow) -> Result<bool, Error> {
        Ok(self.connection.execute(
            "INSERT OR IGNORE INTO device_detections (device_id, detection_id, first_seen_at, detected_at, threat, path, action) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                detection.device_id,
                detection.detection_id,
                detection.first_seen_at,
                detection.detected_at,
                detection.threat,
                detection.path,
                detection.action
            ],
        )? == 1)
    }

    /// The detections a device has listed, newest first.
    pub fn device_detections(&self, device_id: &str) -> Result<Vec<DetectionRow>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT device_id, detection_id, first_seen_at, detected_at, threat, path, action \
             FROM device_detections WHERE device_id = ?1 ORDER BY detected_at DESC, detection_id",
        )?;
        let rows = statement.query_map([device_id], |row| {
            Ok(DetectionRow {
                device_id: row.get(0)?,
                detection_id: row.get(1)?,
                first_seen_at: row.get(2)?,
                detected_at: row.get(3)?,
                threat: row.get(4)?,
                path: row.get(5)?,
                action: row.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Raises an alert unless one with the same key exists; its id when it is new. Its
    /// deliveries are due at once.
    pub fn create_alert(&self, alert: &NewAlert) -> Result<Option<i64>, Error> {
        let inserted = self.connection.execute(
            "INSERT OR IGNORE INTO alerts (dedupe_key, kind, device_id, created_at, subject, body, payload, \
             email_pending, webhook_pending, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?4)",
            params![
                alert.dedupe_key,
                alert.kind,
                alert.device_id,
                alert.created_at,
                alert.subject,
                alert.body,
                alert.payload,
                alert.email,
                alert.webhook
            ],
        )?;
        Ok((inserted == 1).then(|| self.connection.last_insert_rowid()))
    }

    /// Alerts with a delivery due at `now`, oldest first.
    pub fn due_alerts(&self, now: &str, limit: u32) -> Result<Vec<AlertRow>, Error> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE (email_pending OR webhook_pending) \
             AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2"
        );
        let mut statement = self.connection.prepare(&sql)?;
        let rows = statement.query_map(params![now, limit], read_alert)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Recent alerts, newest first (for the devices page).
    pub fn recent_alerts(&self, limit: u32) -> Result<Vec<AlertRow>, Error> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts ORDER BY id DESC LIMIT ?1");
        let mut statement = self.connection.prepare(&sql)?;
        let rows = statement.query_map([limit], read_alert)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records one delivery attempt (`error` is `None` when it was sent).
    pub fn record_alert_attempt(
        &self,
        alert_id: i64,
        channel: &str,
        at: &str,
        error: Option<&str>,
    ) -> Result<(), Error> {
        self.connection.execute(
            "INSERT INTO alert_attempts (alert_id, channel, at, outcome, error) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                alert_id,
                channel,
                at,
                if error.is_some() { "failed" } else { "sent" },
                error.unwrap_or("")
            ],
        )?;
        Ok(())
    }

    /// After a delivery round: what is still pending and when to try again.
    pub fn reschedule_alert(
        &self,
        alert_id: i64,
        email_pending: bool,
        webhook_pending: bool,
        next_attempt_at: &str,
    ) -> Result<(), Error> {
        self.connection.execute(
            "UPDATE alerts SET email_pending = ?2, webhook_pending = ?3, attempts = attempts + 1, \
             next_attempt_at = ?4 WHERE id = ?1",
            params![alert_id, email_pending, webhook_pending, next_attempt_at],
        )?;
        Ok(())
    }

    /// An alert's delivery attempts in order: (channel, outcome, error).
    pub fn alert_attempts(&self, alert_id: i64) -> Result<Vec<(String, String, String)>, Error> {
        let mut statement = self.connection.prepare(
            "SELECT channel, outcome, error FROM alert_attempts WHERE alert_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map([alert_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes reports received before `before` (the device's current state stays), and
    /// enrolment codes that expired before it. Returns the reports removed.
    pub fn prune_device_reports(&self, before: &str) -> Result<usize, Error> {
        self.connection.execute(
            "DELETE FROM enrolment_codes WHERE expires_at < ?1",
            [before],
        )?;
        Ok(self.connection.execute(
            "DELETE FROM device_reports WHERE received_at < ?1",
            [before],
        )?)
    }
}

#[cfg(test)]
mod tests;
