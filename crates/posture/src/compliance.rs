//! Whether a device's report meets the company's policy, and if not, what to fix.
//!
//! The rules, each switched by a [`CompliancePolicy`] field:
//! - Encryption: the system disk's encryption must be on. Partial (still encrypting) and
//!   unknown fail with their own codes, so the message can say "wait" or "ask".
//! - Real-time protection: the antivirus must scan files as they are opened. No antivirus at
//!   all, and a state that could not be read, fail.
//! - Signature age: the signatures must be at most `max_signature_age_days` old at `now`
//!   (exactly that old passes; one second more fails). A date in the future (a skewed device
//!   clock) passes. 0 switches the rule off.
//! - Active threats: no detection may be active. A detection is active when its action is not
//!   a resolved one ([`ThreatAction::is_resolved`]): detected and left, allowed by a user, an
//!   action that failed, or unknown. The report lists what the antivirus still lists, whose
//!   actions the antivirus keeps current (Defender updates a threat's status when a later scan
//!   or the user removes it; the agent marks a ClamAV detection gone when its file is), so the
//!   latest report alone decides.
//!
//! Age is measured at `now`, not at the report's collection time: a report that waited in the
//! agent's queue is judged for what it says about the device today.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::{Antivirus, Detection, EncryptionState, OsFamily, Report, ThreatAction};

/// What a compliant device must have. The default is the policy: encryption on,
/// real-time protection on, signatures at most 7 days old, no active threat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompliancePolicy {
    /// The system disk must be encrypted.
    pub require_encryption: bool,
    /// The antivirus must scan files as they are opened.
    pub require_real_time: bool,
    /// The antivirus signatures may be at most this many days old; 0 turns the rule off.
    pub max_signature_age_days: u32,
    /// Active threats do not make the device non-compliant (they are still alerted).
    pub allow_active_threats: bool,
}

impl Default for CompliancePolicy {
    fn default() -> Self {
        Self {
            require_encryption: true,
            require_real_time: true,
            max_signature_age_days: 7,
            allow_active_threats: false,
        }
    }
}

/// The language of a failure's sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Japanese, genkan's default.
    Ja,
    /// English.
    En,
}

/// The verdict on one report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compliance {
    /// True when there are no failures.
    pub compliant: bool,
    /// What is wrong, in the order of the rules above.
    pub failures: Vec<Failure>,
}

/// One rule the device fails, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The stable code, for the registry, alerts and support.
    pub code: FailureCode,
    /// What to fix, in English.
    pub en: String,
    /// What to fix, in Japanese.
    pub ja: String,
}

impl Failure {
    /// The sentence in `lang`.
    pub fn text(&self, lang: Lang) -> &str {
        match lang {
            Lang::Ja => &self.ja,
            Lang::En => &self.en,
        }
    }
}

/// Why a device is not compliant. The serialised names are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// The system disk is not encrypted (or protection is suspended).
    EncryptionOff,
    /// Encryption is under way or paused part-way.
    EncryptionPartial,
    /// The agent could not read the encryption state.
    EncryptionUnknown,
    /// No antivirus product was found.
    NoAntivirus,
    /// Real-time protection is off.
    RealTimeOff,
    /// The agent could not tell whether real-time protection is on.
    RealTimeUnknown,
    /// The signatures are older than the policy allows.
    SignaturesOutdated,
    /// The agent could not tell when the signatures were updated.
    SignatureDateUnknown,
    /// The antivirus lists a threat that was not dealt with.
    ActiveThreat,
}

impl FailureCode {
    /// The code as stored and shown: `encryption_off`, `active_threat`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EncryptionOff => "encryption_off",
            Self::EncryptionPartial => "encryption_partial",
            Self::EncryptionUnknown => "encryption_unknown",
            Self::NoAntivirus => "no_antivirus",
            Self::RealTimeOff => "real_time_off",
            Self::RealTimeUnknown => "real_time_unknown",
            Self::SignaturesOutdated => "signatures_outdated",
            Self::SignatureDateUnknown => "signature_date_unknown",
            Self::ActiveThreat => "active_threat",
        }
    }
}

/// Judges a report against a policy at `now`.
pub fn evaluate(policy: &CompliancePolicy, report: &Report, now: DateTime<Utc>) -> Compliance {
    let family = report.os.family;
    let mut failures = Vec::new();
    if policy.require_encryption {
        failures.extend(encryption_failure(
            family,
            report.disk_encryption.state,
            &report.disk_encryption.detail,
        ));
    }
    let wants_antivirus = policy.require_real_time || policy.max_signature_age_days > 0;
    match &report.antivirus {
        None if wants_antivirus => failures.push(no_antivirus(family)),
        None => {}
        Some(antivirus) => {
            if policy.require_real_time {
                failures.extend(real_time_failure(family, antivirus));
            }
            if policy.max_signature_age_days > 0 {
                failures.extend(signature_failure(
                    antivirus,
                    policy.max_signature_age_days,
                    now,
                ));
            }
        }
    }
    if !policy.allow_active_threats {
        let active: Vec<&Detection> = active_threats(report).collect();
        if !active.is_empty() {
            failures.push(threat_failure(report, &active));
        }
    }
    Compliance {
        compliant: failures.is_empty(),
        failures,
    }
}

/// The detections of a report that count as active threats (see the module doc).
pub fn active_threats(report: &Report) -> impl Iterator<Item = &Detection> {
    report
        .detections
        .iter()
        .filter(|detection| !detection.action.is_resolved())
}

fn failure(code: FailureCode, en: String, ja: String) -> Failure {
    Failure { code, en, ja }
}

fn encryption_failure(family: OsFamily, state: EncryptionState, detail: &str) -> Option<Failure> {
    let (product_en, product_ja) = match family {
        OsFamily::Windows => ("BitLocker", "BitLocker"),
        OsFamily::Macos => ("FileVault", "FileVault"),
        OsFamily::Linux => ("LUKS disk encryption", "LUKS によるディスク暗号化"),
    };
    match state {
        EncryptionState::On => None,
        EncryptionState::Off => Some(match family {
            OsFamily::Windows => failure(
                FailureCode::EncryptionOff,
                "Turn on BitLocker for drive C: (Settings > Privacy & security > Device encryption, or Control Panel > BitLocker Drive Encryption).".into(),
                "ドライブ C: の BitLocker を有効にしてください（設定 > プライバシーとセキュリティ > デバイスの暗号化、またはコントロール パネル > BitLocker ドライブ暗号化）。".into(),
            ),
            OsFamily::Macos => failure(
                FailureCode::EncryptionOff,
                "Turn on FileVault (System Settings > Privacy & Security > FileVault).".into(),
                "FileVault をオンにしてください（システム設定 > プライバシーとセキュリティ > FileVault）。".into(),
            ),
            OsFamily::Linux => failure(
                FailureCode::EncryptionOff,
                format!("Encrypt the root file system with LUKS; this usually means reinstalling with disk encryption chosen ({detail})."),
                format!("ルートファイルシステムを LUKS で暗号化してください。通常はディスク暗号化を選んで再インストールします（{detail}）。"),
            ),
        }),
        EncryptionState::Partial => Some(failure(
            FailureCode::EncryptionPartial,
            format!("{product_en} has not finished ({detail}); keep the computer on and plugged in until it does."),
            format!("{product_ja} の処理が完了していません（{detail}）。完了するまで電源を入れたままにしてください。"),
        )),
        EncryptionState::Unknown => Some(failure(
            FailureCode::EncryptionUnknown,
            format!("genkan could not read the disk encryption state ({detail}); ask your administrator to check the genkan agent."),
            format!("ディスク暗号化の状態を読み取れませんでした（{detail}）。genkan エージェントの確認を管理者に依頼してください。"),
        )),
    }
}

fn no_antivirus(family: OsFamily) -> Failure {
    match family {
        OsFamily::Windows => failure(
            FailureCode::NoAntivirus,
            "Turn on Microsoft Defender Antivirus (Windows Security > Virus & threat protection).".into(),
            "Microsoft Defender ウイルス対策を有効にしてください（Windows セキュリティ > ウイルスと脅威の防止）。".into(),
        ),
        OsFamily::Macos => failure(
            FailureCode::NoAntivirus,
            "XProtect was not found; update macOS (System Settings > General > Software Update).".into(),
            "XProtect が見つかりません。macOS をアップデートしてください（システム設定 > 一般 > ソフトウェアアップデート）。".into(),
        ),
        OsFamily::Linux => failure(
            FailureCode::NoAntivirus,
            "Install ClamAV (the clamav-daemon package) and keep its signatures updated with freshclam.".into(),
            "ClamAV（clamav-daemon パッケージ）をインストールし、freshclam で定義ファイルを更新してください。".into(),
        ),
    }
}

fn real_time_failure(family: OsFamily, antivirus: &Antivirus) -> Option<Failure> {
    let product = &antivirus.product;
    match antivirus.real_time_protection {
        Some(true) => None,
        Some(false) => Some(match family {
            OsFamily::Windows => failure(
                FailureCode::RealTimeOff,
                format!("Turn on real-time protection in {product} (Windows Security > Virus & threat protection > Manage settings)."),
                format!("{product} のリアルタイム保護をオンにしてください（Windows セキュリティ > ウイルスと脅威の防止 > 設定の管理）。"),
            ),
            OsFamily::Macos => failure(
                FailureCode::RealTimeOff,
                "Turn System Integrity Protection back on (csrutil enable in Recovery); XProtect cannot be relied on without it.".into(),
                "システム整合性保護（SIP）を再び有効にしてください（復旧モードで csrutil enable）。SIP が無効だと XProtect を信頼できません。".into(),
            ),
            OsFamily::Linux => failure(
                FailureCode::RealTimeOff,
                "Turn on ClamAV on-access scanning (enable and start the clamav-clamonacc service).".into(),
                "ClamAV のオンアクセススキャンを有効にしてください（clamav-clamonacc サービスを有効化して起動）。".into(),
            ),
        }),
        None => Some(failure(
            FailureCode::RealTimeUnknown,
            format!("genkan could not tell whether real-time protection is on in {product}; ask your administrator to check the genkan agent."),
            format!("{product} のリアルタイム保護が有効か確認できませんでした。genkan エージェントの確認を管理者に依頼してください。"),
        )),
    }
}

fn signature_failure(antivirus: &Antivirus, max_days: u32, now: DateTime<Utc>) -> Option<Failure> {
    let product = &antivirus.product;
    let Some(updated) = antivirus.signatures_updated_at else {
        return Some(failure(
            FailureCode::SignatureDateUnknown,
            format!(
                "genkan could not tell when the signatures of {product} were last updated; update them now."
            ),
            format!(
                "{product} の定義ファイルの更新日時を確認できませんでした。今すぐ定義ファイルを更新してください。"
            ),
        ));
    };
    let age = now.signed_duration_since(updated);
    if age <= TimeDelta::days(i64::from(max_days)) {
        return None;
    }
    let days = age.num_days();
    Some(failure(
        FailureCode::SignaturesOutdated,
        format!(
            "Update the signatures of {product}: they are {days} days old and at most {max_days} are allowed."
        ),
        format!(
            "{product} の定義ファイルを更新してください。{days} 日前のもので、許容されるのは {max_days} 日までです。"
        ),
    ))
}

fn threat_failure(report: &Report, active: &[&Detection]) -> Failure {
    // Three named threats say enough to act on; the rest are counted.
    let named: Vec<String> = active
        .iter()
        .take(3)
        .map(|detection| match &detection.path {
            Some(path) => format!("{} ({path})", detection.threat),
            None => detection.threat.clone(),
        })
        .collect();
    let mut list = named.join(", ");
    if active.len() > named.len() {
        list.push_str(&format!(" +{}", active.len() - named.len()));
    }
    let failed = active
        .iter()
        .any(|detection| detection.action == ThreatAction::Failed);
    let product = report
        .antivirus
        .as_ref()
        .map_or("the antivirus", |antivirus| antivirus.product.as_str());
    let (en_hint, ja_hint) = if failed {
        (
            " The antivirus could not remove it by itself; ask your administrator before opening anything else.",
            " ウイルス対策ソフトが自動で駆除できませんでした。ほかのファイルを開く前に管理者に連絡してください。",
        )
    } else {
        ("", "")
    };
    failure(
        FailureCode::ActiveThreat,
        format!("Remove the threats {product} found and run a full scan: {list}.{en_hint}"),
        format!(
            "{product} が検出した脅威を駆除し、フルスキャンを実行してください: {list}。{ja_hint}"
        ),
    )
}

#[cfg(test)]
mod tests;
