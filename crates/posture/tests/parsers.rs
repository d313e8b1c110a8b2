//! Every parser on recorded outputs of its tool (tests/fixtures/{windows,macos,linux}), and on
//! empty and garbage input, which must give an error, never a panic.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, FixedOffset, Utc};
use posture::{EncryptionState, Error, OsFamily, ThreatAction, linux, macos, windows};

macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $path
        ))
    };
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).unwrap()
}

fn utc_offset() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap()
}

/// Inputs no parser may panic on.
const GARBAGE: &[&str] = &[
    "",
    "   \n\t",
    "\u{feff}",
    "null",
    "[]",
    "{}",
    "[1,2,3]",
    "\"text\"",
    "{\"Caption\":",
    "The term 'Get-MpComputerStatus' is not recognized as the name of a cmdlet",
    "用語 'Get-BitLockerVolume' は、コマンドレット、関数、スクリプト ファイル、または操作可能なプログラムの名前として認識されません。",
    "\u{0}\u{1}\u{2}",
    "{\"blockdevices\": 5}",
    "{\"ProtectionStatus\": {}, \"VolumeStatus\": []}",
];

mod on_windows {
    use super::*;

    #[test]
    fn os_english_powershell_5() {
        let os = windows::parse_os(fixture!("windows/os_en_ps5.json")).unwrap();
        assert_eq!(os.family, OsFamily::Windows);
        assert_eq!(os.name, "Microsoft Windows 10 Pro");
        assert_eq!(os.version, "10.0.19045");
    }

    #[test]
    fn os_japanese_powershell_7() {
        let os = windows::parse_os(fixture!("windows/os_ja_ps7.json")).unwrap();
        assert_eq!(os.name, "Microsoft Windows 11 Pro");
        assert_eq!(os.version, "10.0.22631");
    }

    #[test]
    fn defender_status_powershell_5_date_form() {
        let antivirus =
            windows::parse_defender_status(fixture!("windows/mpcomputerstatus_ps5.json"), jst())
                .unwrap();
        assert_eq!(antivirus.product, "Microsoft Defender Antivirus");
        assert_eq!(antivirus.real_time_protection, Some(true));
        assert_eq!(antivirus.signature_version.as_deref(), Some("1.421.1543.0"));
        // \/Date(ms)\/ is UTC whatever the machine's zone.
        assert_eq!(
            antivirus.signatures_updated_at,
            Some(utc("2026-12-08T21:14:05Z"))
        );
    }

    #[test]
    fn defender_status_powershell_7_iso_form_japanese_machine() {
        let antivirus =
            windows::parse_defender_status(fixture!("windows/mpcomputerstatus_ps7_ja.json"), jst())
                .unwrap();
        assert_eq!(antivirus.real_time_protection, Some(false));
        assert_eq!(antivirus.signature_version.as_deref(), Some("1.421.1002.0"));
        assert_eq!(
            antivirus.signatures_updated_at,
            Some(utc("2026-11-26T21:14:05Z"))
        );
    }

    #[test]
    fn defender_in_passive_mode_is_not_real_time() {
        let antivirus = windows::parse_defender_status(
            fixture!("windows/mpcomputerstatus_passive.json"),
            jst(),
        )
        .unwrap();
        assert_eq!(antivirus.real_time_protection, Some(false));
    }

    #[test]
    fn defender_status_with_an_unreadable_date_is_an_error() {
        let text = r#"{"RealTimeProtectionEnabled": true, "AntivirusEnabled": true,
            "AntivirusSignatureLastUpdated": "last Tuesday"}"#;
        assert!(matches!(
            windows::parse_defender_status(text, jst()),
            Err(Error::BadValue {
                field: "AntivirusSignatureLastUpdated",
                ..
            })
        ));
    }

    #[test]
    fn one_detection_printed_as_an_object() {
        let names = windows::parse_threat_names(fixture!("windows/mpthreat_single.json")).unwrap();
        let detections = windows::parse_detections(
            fixture!("windows/mpthreatdetection_single.json"),
            &names,
            jst(),
        )
        .unwrap();
        assert_eq!(detections.len(), 1);
        let detection = &detections[0];
        assert_eq!(
            detection.id,
            "defender:8E5C2A61-3F0B-4C59-9D7A-5B2C1E0F4A11"
        );
        assert_eq!(detection.threat, "Virus:DOS/EICAR_Test_File");
        assert_eq!(detection.detected_at, utc("2026-12-07T01:32:10Z"));
        assert_eq!(
            detection.path.as_deref(),
            Some(r"C:\Users\sales07\Downloads\eicar_com.zip")
        );
        assert_eq!(detection.action, ThreatAction::Quarantined);
    }

    #[test]
    fn several_detections_printed_as_an_array_japanese_paths() {
        let names = windows::parse_threat_names(fixture!("windows/mpthreat_many_ja.json")).unwrap();
        assert_eq!(names.len(), 2);
        let detections = windows::parse_detections(
            fixture!("windows/mpthreatdetection_many_ja.json"),
            &names,
            jst(),
        )
        .unwrap();
        // Oldest first, whatever order Defender printed.
        assert_eq!(detections.len(), 2);
        assert_eq!(detections[0].threat, "Trojan:Win32/Wacatac.B!ml");
        assert_eq!(detections[0].detected_at, utc("2026-12-07T01:32:10Z"));
        assert_eq!(detections[0].action, ThreatAction::Failed);
        assert_eq!(
            detections[0].path.as_deref(),
            Some(r"C:\Users\山田太郎\AppData\Local\Temp\請求書.exe")
        );
        assert_eq!(detections[1].action, ThreatAction::Quarantined);
        assert_eq!(
            detections[1].path.as_deref(),
            Some(r"C:\Users\山田太郎\Downloads\見積書_2026年12月.zip")
        );
    }

    #[test]
    fn no_detections_is_empty_output() {
        let names = windows::parse_threat_names("").unwrap();
        assert!(names.is_empty());
        assert!(
            windows::parse_detections("\r\n", &names, jst())
                .unwrap()
                .is_empty()
        );
        assert!(
            windows::parse_detections(fixture!("windows/empty_with_bom.txt"), &names, jst())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn unknown_threat_id_is_named_by_number() {
        let text = r#"{"DetectionID":"{X}","ThreatID":42,"InitialDetectionTime":"\/Date(0)\/","ThreatStatusID":1}"#;
        let detections = windows::parse_detections(text, &Default::default(), jst()).unwrap();
        assert_eq!(detections[0].threat, "ThreatID 42");
        assert_eq!(detections[0].action, ThreatAction::Reported);
        assert_eq!(detections[0].path, None);
    }

    #[test]
    fn bitlocker_on_with_numbers() {
        let encryption =
            windows::parse_bitlocker(fixture!("windows/bitlocker_on_ps5.json")).unwrap();
        assert_eq!(encryption.state, EncryptionState::On);
        assert_eq!(
            encryption.detail,
            "BitLocker on C:: protection On, FullyEncrypted, XtsAes128"
        );
    }

    #[test]
    fn bitlocker_encrypting_with_names() {
        let encryption =
            windows::parse_bitlocker(fixture!("windows/bitlocker_encrypting_ja_ps7.json")).unwrap();
        assert_eq!(encryption.state, EncryptionState::Partial);
        assert!(
            encryption.detail.contains("37% encrypted"),
            "{}",
            encryption.detail
        );
    }

    #[test]
    fn bitlocker_off() {
        let encryption =
            windows::parse_bitlocker(fixture!("windows/bitlocker_off_ps5.json")).unwrap();
        assert_eq!(encryption.state, EncryptionState::Off);
    }

    #[test]
    fn firewall_profiles() {
        assert!(windows::parse_firewall(fixture!("windows/firewall_all_on_ps5.json")).unwrap());
        assert!(
            !windows::parse_firewall(fixture!("windows/firewall_public_off_ps7.json")).unwrap()
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in GARBAGE {
            assert!(windows::parse_os(text).is_err(), "{text:?}");
            assert!(
                windows::parse_defender_status(text, jst()).is_err(),
                "{text:?}"
            );
            assert!(windows::parse_bitlocker(text).is_err(), "{text:?}");
            // An empty list of profiles or detections is not garbage; anything else is.
            if !["[]", "null"].contains(text) {
                assert!(windows::parse_firewall(text).is_err(), "{text:?}");
            }
            let _ = windows::parse_threat_names(text);
            let _ = windows::parse_detections(text, &Default::default(), jst());
        }
        assert!(matches!(windows::parse_os(""), Err(Error::Empty { .. })));
        assert!(
            windows::parse_detections("{\"ThreatID\": 1}", &Default::default(), jst()).is_err()
        );
    }

    #[test]
    fn errors_name_the_cmdlet() {
        let error = windows::parse_bitlocker("not json").unwrap_err();
        assert!(
            error.to_string().starts_with("Get-BitLockerVolume:"),
            "{error}"
        );
    }
}

mod on_macos {
    use super::*;

    #[test]
    fn sw_vers_versions() {
        let os = macos::parse_sw_vers(fixture!("macos/sw_vers_sonoma.txt")).unwrap();
        assert_eq!(
            (os.family, os.name.as_str(), os.version.as_str()),
            (OsFamily::Macos, "macOS", "14.4.1")
        );
        let os = macos::parse_sw_vers(fixture!("macos/sw_vers_sequoia.txt")).unwrap();
        assert_eq!(os.version, "15.1.1");
        let os = macos::parse_sw_vers(fixture!("macos/sw_vers_high_sierra.txt")).unwrap();
        assert_eq!(
            (os.name.as_str(), os.version.as_str()),
            ("Mac OS X", "10.13.6")
        );
    }

    #[test]
    fn filevault_states() {
        let cases = [
            (fixture!("macos/fdesetup_on.txt"), EncryptionState::On),
            (fixture!("macos/fdesetup_off.txt"), EncryptionState::Off),
            (
                fixture!("macos/fdesetup_encrypting.txt"),
                EncryptionState::Partial,
            ),
            (
                fixture!("macos/fdesetup_decrypting.txt"),
                EncryptionState::Partial,
            ),
            (
                fixture!("macos/fdesetup_deferred.txt"),
                EncryptionState::Off,
            ),
        ];
        for (text, state) in cases {
            assert_eq!(
                macos::parse_fdesetup_status(text).unwrap().state,
                state,
                "{text}"
            );
        }
        let encrypting =
            macos::parse_fdesetup_status(fixture!("macos/fdesetup_encrypting.txt")).unwrap();
        assert_eq!(
            encrypting.detail,
            "FileVault is On; Encryption in progress: Percent completed = 35.2"
        );
    }

    #[test]
    fn xprotect_reports_the_higher_of_both_bundles() {
        let old =
            macos::parse_xprotect_version(fixture!("macos/xprotect_info_sonoma.plist")).unwrap();
        let new =
            macos::parse_xprotect_version(fixture!("macos/xprotect_info_sequoia_primary.plist"))
                .unwrap();
        assert_eq!((old.as_str(), new.as_str()), ("5287", "5297"));
        let antivirus = macos::xprotect(
            &[
                macos::XProtectBundle {
                    version: new,
                    modified_at: Some(utc("2026-12-03T02:00:00Z")),
                },
                macos::XProtectBundle {
                    version: old,
                    modified_at: Some(utc("2026-12-05T02:00:00Z")),
                },
            ],
            Some(true),
        )
        .unwrap();
        assert_eq!(antivirus.product, "XProtect");
        assert_eq!(antivirus.signature_version.as_deref(), Some("5297"));
        assert_eq!(
            antivirus.signatures_updated_at,
            Some(utc("2026-12-03T02:00:00Z"))
        );
        assert_eq!(antivirus.real_time_protection, Some(true));
    }

    #[test]
    fn sip_states() {
        assert!(macos::parse_csrutil_status(fixture!("macos/csrutil_enabled.txt")).unwrap());
        assert!(!macos::parse_csrutil_status(fixture!("macos/csrutil_disabled.txt")).unwrap());
        assert!(!macos::parse_csrutil_status(fixture!("macos/csrutil_custom.txt")).unwrap());
    }

    #[test]
    fn application_firewall_states() {
        assert!(macos::parse_firewall_state(fixture!("macos/socketfilterfw_on.txt")).unwrap());
        assert!(!macos::parse_firewall_state(fixture!("macos/socketfilterfw_off.txt")).unwrap());
        assert!(
            macos::parse_firewall_state(fixture!("macos/socketfilterfw_block_all.txt")).unwrap()
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in GARBAGE {
            assert!(macos::parse_sw_vers(text).is_err(), "{text:?}");
            assert!(macos::parse_fdesetup_status(text).is_err(), "{text:?}");
            assert!(macos::parse_xprotect_version(text).is_err(), "{text:?}");
            assert!(macos::parse_csrutil_status(text).is_err(), "{text:?}");
            assert!(macos::parse_firewall_state(text).is_err(), "{text:?}");
        }
        assert!(macos::parse_firewall_state("Firewall is enabled. (State = x)").unwrap());
        assert!(macos::parse_sw_vers("ProductName:\t\n").is_err());
    }
}

mod on_linux {
    use super::*;

    #[test]
    fn os_release_files() {
        let os = linux::parse_os_release(fixture!("linux/os-release_debian12.txt")).unwrap();
        assert_eq!(
            (os.family, os.name.as_str(), os.version.as_str()),
            (OsFamily::Linux, "Debian GNU/Linux 12 (bookworm)", "12")
        );
        let os = linux::parse_os_release(fixture!("linux/os-release_ubuntu2404.txt")).unwrap();
        assert_eq!(
            (os.name.as_str(), os.version.as_str()),
            ("Ubuntu 24.04.1 LTS", "24.04")
        );
        let os = linux::parse_os_release(fixture!("linux/os-release_fedora41.txt")).unwrap();
        assert_eq!(
            (os.name.as_str(), os.version.as_str()),
            ("Fedora Linux 41 (Workstation Edition)", "41")
        );
    }

    #[test]
    fn root_under_luks_and_lvm_is_encrypted() {
        let encryption = linux::parse_lsblk(fixture!("linux/lsblk_ubuntu_luks_lvm.json")).unwrap();
        assert_eq!(encryption.state, EncryptionState::On);
        assert_eq!(
            encryption.detail,
            "/ is on ubuntu--vg-ubuntu--lv (lvm, ext4) inside dm_crypt-0 (crypt, LVM2_member)"
        );
    }

    #[test]
    fn plain_root_is_not_encrypted() {
        let encryption = linux::parse_lsblk(fixture!("linux/lsblk_debian_plain.json")).unwrap();
        assert_eq!(encryption.state, EncryptionState::Off);
        assert_eq!(
            encryption.detail,
            "/ is on sda2 (part, ext4), not inside a crypt device"
        );
    }

    #[test]
    fn btrfs_on_luks_with_mountpoints_array() {
        let encryption =
            linux::parse_lsblk(fixture!("linux/lsblk_fedora_btrfs_mountpoints.json")).unwrap();
        assert_eq!(encryption.state, EncryptionState::On);
    }

    #[test]
    fn no_device_at_root_is_unknown() {
        let encryption = linux::parse_lsblk(fixture!("linux/lsblk_container.json")).unwrap();
        assert_eq!(encryption.state, EncryptionState::Unknown);
    }

    #[test]
    fn clamav_version_with_database() {
        let version =
            linux::parse_clamav_version(fixture!("linux/clamdscan_version.txt"), jst()).unwrap();
        assert_eq!(version.engine, "1.4.3");
        assert_eq!(version.signature_version.as_deref(), Some("27500"));
        assert_eq!(
            version.signatures_built_at,
            Some(utc("2026-11-30T23:00:00Z"))
        );
        let antivirus = linux::clamav(&version, Some(false));
        assert_eq!(antivirus.product, "ClamAV 1.4.3");
        assert_eq!(antivirus.real_time_protection, Some(false));
    }

    #[test]
    fn clamav_version_without_database() {
        let version = linux::parse_clamav_version(
            fixture!("linux/clamscan_version_no_database.txt"),
            utc_offset(),
        )
        .unwrap();
        assert_eq!(version.engine, "1.0.7");
        assert_eq!(version.signature_version, None);
        assert_eq!(version.signatures_built_at, None);
    }

    #[test]
    fn clamd_log_detections() {
        let fallback = utc("2026-12-02T00:00:00Z");
        let detections = linux::parse_clamav_log(fixture!("linux/clamd.log"), jst(), fallback);
        assert_eq!(detections.len(), 3, "{detections:#?}");
        assert_eq!(detections[0].threat, "Eicar-Test-Signature");
        assert_eq!(
            detections[0].path.as_deref(),
            Some("/home/tanaka/Downloads/eicar.com")
        );
        assert_eq!(detections[0].detected_at, utc("2026-12-01T00:14:55Z"));
        assert_eq!(detections[0].action, ThreatAction::Reported);
        assert!(detections[0].id.starts_with("clamav:"));
        assert_eq!(detections[1].path, None);
        assert_eq!(detections[1].action, ThreatAction::Blocked);
        // A path with ": " in it keeps it; the signature is after the last one.
        assert_eq!(
            detections[2].path.as_deref(),
            Some("/home/tanaka/ダウンロード/請求書: 2026.pdf")
        );
        assert_eq!(detections[2].threat, "Pdf.Exploit.CVE_2018_4993-6466680-0");
        // Ids are stable from one reading to the next and distinct.
        let again = linux::parse_clamav_log(fixture!("linux/clamd.log"), jst(), fallback);
        assert_eq!(detections, again);
        assert_ne!(detections[0].id, detections[1].id);
    }

    #[test]
    fn clamscan_output_with_actions() {
        let fallback = utc("2026-12-01T01:00:12Z");
        let detections =
            linux::parse_clamav_log(fixture!("linux/clamscan_remove.txt"), jst(), fallback);
        let actions: Vec<ThreatAction> = detections.iter().map(|d| d.action).collect();
        assert_eq!(
            actions,
            [
                ThreatAction::Removed,
                ThreatAction::Quarantined,
                ThreatAction::Reported
            ]
        );
        assert!(detections.iter().all(|d| d.detected_at == fallback));
    }

    #[test]
    fn firewall_front_ends() {
        assert!(linux::parse_ufw_status(fixture!("linux/ufw_active.txt")).unwrap());
        assert!(!linux::parse_ufw_status(fixture!("linux/ufw_inactive.txt")).unwrap());
        assert!(matches!(
            linux::parse_ufw_status(fixture!("linux/ufw_not_root.txt")),
            Err(Error::Unrecognised { .. })
        ));
        assert!(linux::nft_filters_input(fixture!(
            "linux/nft_ruleset_filtering.txt"
        )));
        assert!(!linux::nft_filters_input(fixture!(
            "linux/nft_ruleset_docker_only.txt"
        )));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in GARBAGE {
            assert!(
                linux::parse_lsblk(text).is_err() || *text == "{}",
                "{text:?}"
            );
            assert!(
                linux::parse_clamav_version(text, jst()).is_err(),
                "{text:?}"
            );
            assert!(linux::parse_ufw_status(text).is_err(), "{text:?}");
            assert!(linux::parse_is_active(text).is_err(), "{text:?}");
            assert!(linux::parse_clamav_log(text, jst(), utc("2026-01-01T00:00:00Z")).is_empty());
            assert!(!linux::nft_filters_input(text));
            let _ = linux::parse_os_release(text);
        }
        assert!(linux::parse_lsblk("{}").is_err());
        assert!(linux::parse_os_release("").is_err());
    }
}
