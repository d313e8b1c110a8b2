//! The TLS face of the gateway, checked with outside tools: openssl s_client and testssl.sh.

use std::time::Duration;

use crate::harness::{Genkan, run_tool};

async fn s_client(genkan: &Genkan, extra: &[&str]) -> (bool, String) {
    let connect = format!("127.0.0.1:{}", genkan.https.port());
    let ca = genkan.pki.ca_path.display().to_string();
    let mut args = vec![
        "s_client",
        "-connect",
        &connect,
        "-servername",
        "localhost",
        "-CAfile",
        &ca,
        "-brief",
    ];
    args.extend_from_slice(extra);
    // s_client waits on stdin; run_tool closes it, so the tool ends after the handshake.
    run_tool("openssl", &args, Duration::from_secs(20)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_0_and_1_1_are_refused_by_the_server() {
    let genkan = Genkan::start("").await;
    for version in ["-tls1", "-tls1_1"] {
        // SECLEVEL=0 lets the client offer the old version at all, so the refusal seen is the server's.
        let (ok, output) = s_client(&genkan, &[version, "-cipher", "DEFAULT@SECLEVEL=0"]).await;
        assert!(!ok, "{version} was accepted:\n{output}");
        // An alert received from the peer, not the client declining to try.
        assert!(
            output.contains("SSL alert number"),
            "{version} not refused by the server:\n{output}"
        );
        assert!(
            !output.contains("no protocols available"),
            "the client never tried {version}:\n{output}"
        );
    }
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_and_1_3_work_with_aead_suites_and_alpn_h2() {
    let genkan = Genkan::start("").await;
    let (ok, output) = s_client(&genkan, &["-tls1_3"]).await;
    assert!(ok, "{output}");
    assert!(output.contains("Protocol version: TLSv1.3"), "{output}");
    assert!(output.contains("Verification: OK"), "{output}");

    // -brief hides ALPN, so this one asks for the full report.
    let connect = format!("127.0.0.1:{}", genkan.https.port());
    let (ok, output) = run_tool(
        "openssl",
        &[
            "s_client",
            "-connect",
            &connect,
            "-servername",
            "localhost",
            "-alpn",
            "h2,http/1.1",
        ],
        Duration::from_secs(20),
    )
    .await;
    assert!(ok, "{output}");
    assert!(output.contains("ALPN protocol: h2"), "{output}");

    let (ok, output) = s_client(&genkan, &["-tls1_2"]).await;
    assert!(ok, "{output}");
    assert!(output.contains("Protocol version: TLSv1.2"), "{output}");
    assert!(
        output.contains("GCM") || output.contains("CHACHA20"),
        "{output}"
    );

    // The seed's cipher string let CBC and non-ECDHE suites in; genkan has none to offer.
    for weak in [
        "ECDHE-ECDSA-AES128-SHA",
        "AES128-GCM-SHA256",
        "DHE-RSA-AES256-SHA",
    ] {
        let (ok, output) = s_client(&genkan, &["-tls1_2", "-cipher", weak]).await;
        assert!(!ok, "{weak} negotiated:\n{output}");
        assert!(
            output.contains("alert handshake failure"),
            "{weak}:\n{output}"
        );
    }
    genkan.shutdown().await;
}

/// One testssl run (`-p -s -f -P -S -h -U`) against genkan; returns its JSON findings.
async fn run_testssl(genkan: &Genkan, attempt: u32) -> Vec<serde_json::Value> {
    let report = genkan.dir.0.join(format!("testssl-{attempt}.json"));
    let target = format!("localhost:{}", genkan.https.port());
    let ca = genkan.pki.ca_path.display().to_string();
    let report_arg = report.display().to_string();
    let (_, output) = run_tool(
        "testssl",
        &[
            "--quiet",
            "--color",
            "0",
            "--warnings",
            "batch",
            "--nodns",
            "none",
            "--add-ca",
            &ca,
            "-p",
            "-s",
            "-f",
            "-P",
            "-S",
            "-h",
            "-U",
            "--jsonfile",
            &report_arg,
            &target,
        ],
        Duration::from_secs(600),
    )
    .await;
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|_| panic!("testssl wrote no report:\n{output}"));
    let findings: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(
        findings.len() > 50,
        "testssl reported too little to be a real run:\n{text}"
    );
    findings
}

/// Findings of severity LOW or above, and scanner warnings other than the engine notice
/// testssl always prints with Debian's OpenSSL.
fn bad(findings: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    findings
        .iter()
        .filter(|finding| {
            let severity = finding["severity"].as_str().unwrap_or("");
            let id = finding["id"].as_str().unwrap_or("");
            matches!(severity, "LOW" | "MEDIUM" | "HIGH" | "CRITICAL")
                || (severity == "WARN" && id != "engine_problem")
        })
        .collect()
}

fn is_scanner_connect_problem(finding: &serde_json::Value) -> bool {
    finding["severity"] == "WARN"
        && finding["finding"]
            .as_str()
            .is_some_and(|text| text.contains("connect problem"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testssl_finds_nothing_of_severity_low_or_above() {
    let genkan = Genkan::start("").await;
    // testssl itself sometimes cannot connect for one of its checks when the machine is busy
    // (a WARN "connect problem", about the scanner, not the server). Such a run is repeated,
    // up to three runs in all (two in a row were seen on a loaded machine); any finding of
    // severity LOW or above fails at once.
    let mut findings = run_testssl(&genkan, 1).await;
    for attempt in 2..=3 {
        let only_connect_problems = !bad(&findings).is_empty()
            && bad(&findings)
                .iter()
                .all(|finding| is_scanner_connect_problem(finding));
        if !only_connect_problems {
            break;
        }
        findings = run_testssl(&genkan, attempt).await;
    }
    let bad = bad(&findings);
    assert!(bad.is_empty(), "testssl findings: {bad:#?}");
    let finding = |id: &str| {
        findings
            .iter()
            .find(|f| f["id"] == id)
            .and_then(|f| f["finding"].as_str())
            .unwrap_or_else(|| panic!("no {id} in the report"))
            .to_owned()
    };
    assert_eq!(finding("TLS1"), "not offered");
    assert_eq!(finding("TLS1_1"), "not offered");
    assert!(
        finding("TLS1_2").starts_with("offered"),
        "{}",
        finding("TLS1_2")
    );
    assert!(
        finding("TLS1_3").starts_with("offered"),
        "{}",
        finding("TLS1_3")
    );
    assert!(finding("ALPN_HTTP2").contains("h2"));
    genkan.shutdown().await;
}
