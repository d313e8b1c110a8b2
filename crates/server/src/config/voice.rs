//! The `[voice]` settings: the SIP listener, the RTP port range, carrier trunks and the agents'
//! SIP phones, as written (serde structs refusing unknown keys) and checked into typed values.
//! Every key is described in docs/config.md (a test below keeps the two in step).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use serde::Deserialize;

use super::ConfigError;

/// `[voice]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceFile {
    /// Address SIP is received on, UDP and TCP. Default `0.0.0.0:5060`.
    pub sip_listen: Option<String>,
    /// RTP ports, `"20000-20999"`; each call takes two. Default `"20000-29999"`.
    pub rtp_ports: Option<String>,
    /// Address written into SDP (where peers send audio). Default: the `sip_listen` address,
    /// which must then not be unspecified.
    pub public_address: Option<String>,
    /// UDP address of the browser softphones' one WebRTC socket. Default: the `sip_listen`
    /// address with any free port.
    pub webrtc_listen: Option<String>,
    /// Record calls (stereo WAV under the data directory). Default true.
    pub recordings: Option<bool>,
    /// Folder of WAV prompts, relative to the data directory unless absolute. Default
    /// `"prompts"`.
    pub prompts: Option<String>,
    /// `[voice.prompt_files]`: what the flow says (a say or get-input block's text) → WAV file
    /// in `prompts`.
    #[serde(default)]
    pub prompt_files: std::collections::BTreeMap<String, String>,
    /// `[[voice.trunk]]` tables: carriers whose calls are taken.
    #[serde(default, rename = "trunk")]
    pub trunks: Vec<TrunkFile>,
    /// `[[voice.sip_agent]]` tables: agents' SIP phones.
    #[serde(default, rename = "sip_agent")]
    pub sip_agents: Vec<SipAgentFile>,
}

/// `[[voice.trunk]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkFile {
    /// The trunk's name, for logs.
    pub name: String,
    /// Source addresses calls may come from, as CIDR (`"203.0.113.0/24"`, `"127.0.0.1"`).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Digest user name the carrier must authenticate with (with `password`).
    pub username: Option<String>,
    /// Digest password.
    pub password: Option<String>,
    /// `[voice.trunk.register]`: genkan registers with the carrier, so that the carrier
    /// sends this trunk's calls to genkan's SIP address.
    pub register: Option<RegisterFile>,
}

/// `[voice.trunk.register]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFile {
    /// The carrier's registrar: `host`, `host:port`, `ip:port` or `[v6]:port` (UDP; port
    /// 5060 when not given).
    pub registrar: String,
    /// The account's user name at the carrier (digest user and address-of-record user).
    pub username: String,
    /// The account's password.
    pub password: String,
    /// The address-of-record domain, when it is not the registrar's host.
    pub domain: Option<String>,
    /// The lifetime asked for, in seconds (60–86400; 3600 when not given).
    pub expires: Option<u32>,
}

/// `[[voice.sip_agent]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipAgentFile {
    /// The `[[contact.agent]]` this phone belongs to (also its digest user name).
    pub name: String,
    /// The phone's REGISTER password.
    pub password: String,
}

/// A password from the config: `***` in `Debug`, so it never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct SipPassword(String);

impl SipPassword {
    /// The password, for digest computation.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SipPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// An address block: an address and how many leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub address: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A carrier trunk, checked.
#[derive(Debug, Clone)]
pub struct TrunkSettings {
    /// Name for logs.
    pub name: String,
    /// Allowed sources; empty means any (then credentials are required).
    pub allow: Vec<Cidr>,
    /// Digest credentials the carrier must present, if any.
    pub credentials: Option<(String, SipPassword)>,
    /// genkan's registration with the carrier, if any.
    pub register: Option<RegisterSettings>,
}

/// `[voice.trunk.register]`, checked.
#[derive(Debug, Clone)]
pub struct RegisterSettings {
    /// The registrar's host name or IP address (brackets removed).
    pub host: String,
    /// The registrar's port.
    pub port: u16,
    /// The address-of-record domain.
    pub domain: String,
    /// User name at the carrier.
    pub username: String,
    /// Password at the carrier.
    pub password: SipPassword,
    /// Lifetime asked for, in seconds.
    pub expires: u32,
}

/// An agent's SIP phone, checked.
#[derive(Debug, Clone)]
pub struct SipAgentSettings {
    /// The contact-center agent (and digest user name).
    pub name: String,
    /// REGISTER password.
    pub password: SipPassword,
}

/// `[voice]`, checked.
#[derive(Debug, Clone)]
pub struct VoiceSettings {
    /// SIP over UDP and TCP.
    pub sip_listen: SocketAddr,
    /// RTP ports.
    pub rtp_ports: RangeInclusive<u16>,
    /// The address in our SDP and Contact headers.
    pub public_address: IpAddr,
    /// The browser softphones' UDP socket.
    pub webrtc_listen: SocketAddr,
    /// Whether calls are recorded unless the flow says otherwise.
    pub recordings: bool,
    /// The prompts folder as written (resolved against the data directory at start).
    pub prompts: std::path::PathBuf,
    /// Text → WAV file name in the prompts folder.
    pub prompt_files: std::collections::BTreeMap<String, String>,
    /// Carrier trunks.
    pub trunks: Vec<TrunkSettings>,
    /// Agents' SIP phones.
    pub sip_agents: Vec<SipAgentSettings>,
}

fn cidr(key: &str, text: &str) -> Result<Cidr, ConfigError> {
    let bad = || ConfigError::new(key, format!("`{text}` is not an address or CIDR block"));
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address.trim().parse().map_err(|_| bad())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(prefix) => prefix.trim().parse::<u8>().map_err(|_| bad())?,
    };
    if prefix > max {
        return Err(bad());
    }
    Ok(Cidr { address, prefix })
}

fn port_range(key: &str, text: &str) -> Result<RangeInclusive<u16>, ConfigError> {
    let bad = || {
        ConfigError::new(
            key,
            format!("`{text}` is not a port range such as \"20000-20999\""),
        )
    };
    let (low, high) = text.split_once('-').ok_or_else(bad)?;
    let low: u16 = low.trim().parse().map_err(|_| bad())?;
    let high: u16 = high.trim().parse().map_err(|_| bad())?;
    if low == 0 || high <= low {
        return Err(bad());
    }
    Ok(low..=high)
}

fn register_settings(key: &str, file: RegisterFile) -> Result<RegisterSettings, ConfigError> {
    let text = file.registrar.trim();
    let without_scheme = text.strip_prefix("sip:").unwrap_or(text);
    let bad = || {
        ConfigError::new(
            format!("{key}.registrar"),
            format!("`{text}` is not a host or host:port such as \"sip.carrier.example:5060\""),
        )
    };
    let uri = sip::Uri::parse(&format!("sip:{without_scheme}")).map_err(|_| bad())?;
    let Some(uri) = uri.as_sip() else {
        return Err(bad());
    };
    if uri.user.is_some() || !uri.params.is_empty() || uri.host.is_empty() {
        return Err(bad());
    }
    let host = uri
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if file.username.trim().is_empty() || file.password.is_empty() {
        return Err(ConfigError::new(
            format!("{key}.password"),
            "give the account's username and password at the carrier",
        ));
    }
    let expires = file.expires.unwrap_or(3600);
    if !(60..=86_400).contains(&expires) {
        return Err(ConfigError::new(
            format!("{key}.expires"),
            format!("{expires} is not between 60 and 86400 seconds"),
        ));
    }
    let domain = file.domain.unwrap_or_else(|| uri.host.clone());
    Ok(RegisterSettings {
        host,
        port: uri.port.unwrap_or(5060),
        domain,
        username: file.username.trim().to_owned(),
        password: SipPassword(file.password),
        expires,
    })
}

/// Checks `[voice]` against the contact center's agents.
pub(super) fn voice_settings(
    file: Option<VoiceFile>,
    contact_agents: &[String],
) -> Result<Option<VoiceSettings>, ConfigError> {
    let Some(file) = file else {
        return Ok(None);
    };
    let listen_text = file.sip_listen.as_deref().unwrap_or("0.0.0.0:5060");
    let sip_listen: SocketAddr = listen_text.parse().map_err(|_| {
        ConfigError::new(
            "voice.sip_listen",
            format!("`{listen_text}` is not an address such as \"127.0.0.1:5060\""),
        )
    })?;
    let rtp_ports = port_range(
        "voice.rtp_ports",
        file.rtp_ports.as_deref().unwrap_or("20000-29999"),
    )?;
    let public_address = match &file.public_address {
        Some(text) => text.parse().map_err(|_| {
            ConfigError::new(
                "voice.public_address",
                format!("`{text}` is not an IP address"),
            )
        })?,
        None if sip_listen.ip().is_unspecified() => {
            return Err(ConfigError::new(
                "voice.public_address",
                "required when sip_listen is 0.0.0.0 or [::]",
            ));
        }
        None => sip_listen.ip(),
    };
    let webrtc_listen = match &file.webrtc_listen {
        Some(text) => text.parse().map_err(|_| {
            ConfigError::new(
                "voice.webrtc_listen",
                format!("`{text}` is not an address such as \"127.0.0.1:5062\""),
            )
        })?,
        None => SocketAddr::new(sip_listen.ip(), 0),
    };
    let mut trunks = Vec::new();
    for (index, trunk) in file.trunks.into_iter().enumerate() {
        let key = format!("voice.trunk[{index}]");
        let allow = trunk
            .allow
            .iter()
            .map(|text| cidr(&format!("{key}.allow"), text))
            .collect::<Result<Vec<_>, _>>()?;
        let credentials = match (trunk.username, trunk.password) {
            (Some(username), Some(password)) if !username.is_empty() && !password.is_empty() => {
                Some((username, SipPassword(password)))
            }
            (None, None) => None,
            _ => {
                return Err(ConfigError::new(
                    format!("{key}.password"),
                    "give both username and password (non-empty), or neither",
                ));
            }
        };
        let register = trunk
            .register
            .map(|file| register_settings(&format!("{key}.register"), file))
            .transpose()?;
        if allow.is_empty() && credentials.is_none() && register.is_none() {
            return Err(ConfigError::new(
                format!("{key}.allow"),
                "a trunk needs source addresses, credentials or a registration",
            ));
        }
        trunks.push(TrunkSettings {
            name: trunk.name,
            allow,
            credentials,
            register,
        });
    }
    let mut sip_agents: Vec<SipAgentSettings> = Vec::new();
    for (index, agent) in file.sip_agents.into_iter().enumerate() {
        let key = format!("voice.sip_agent[{index}]");
        if !contact_agents.contains(&agent.name) {
            return Err(ConfigError::new(
                format!("{key}.name"),
                format!("`{}` is not a [[contact.agent]]", agent.name),
            ));
        }
        if sip_agents.iter().any(|known| known.name == agent.name) {
            return Err(ConfigError::new(
                format!("{key}.name"),
                format!("`{}` is named twice", agent.name),
            ));
        }
        if agent.password.len() < 8 {
            return Err(ConfigError::new(
                format!("{key}.password"),
                "must be at least 8 characters",
            ));
        }
        sip_agents.push(SipAgentSettings {
            name: agent.name,
            password: SipPassword(agent.password),
        });
    }
    Ok(Some(VoiceSettings {
        sip_listen,
        rtp_ports,
        public_address,
        webrtc_listen,
        recordings: file.recordings.unwrap_or(true),
        prompts: file.prompts.unwrap_or_else(|| "prompts".into()).into(),
        prompt_files: file.prompt_files,
        trunks,
        sip_agents,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, agents: &[&str]) -> Result<Option<VoiceSettings>, ConfigError> {
        let file: VoiceFile = toml::from_str(text)
            .map_err(|error| ConfigError::new("(syntax)", error.to_string()))?;
        let agents: Vec<String> = agents.iter().map(|agent| (*agent).to_owned()).collect();
        voice_settings(Some(file), &agents)
    }

    #[test]
    fn a_full_section_is_read_into_typed_values() {
        let settings = check(
            "sip_listen = \"127.0.0.1:5062\"\nrtp_ports = \"30000-30099\"\nrecordings = false\n\
             [[trunk]]\nname = \"carrier\"\nallow = [\"127.0.0.0/8\", \"::1\"]\n\
             [[sip_agent]]\nname = \"agent1\"\npassword = \"phone-secret\"\n",
            &["agent1"],
        )
        .unwrap()
        .unwrap();
        assert_eq!(settings.sip_listen.port(), 5062);
        assert_eq!(settings.rtp_ports, 30000..=30099);
        assert_eq!(settings.public_address.to_string(), "127.0.0.1");
        assert!(!settings.recordings);
        let trunk = &settings.trunks[0];
        assert!(trunk.allow[0].contains("127.1.2.3".parse().unwrap()));
        assert!(!trunk.allow[0].contains("10.0.0.1".parse().unwrap()));
        assert!(trunk.allow[0].contains("::ffff:127.0.0.9".parse().unwrap()));
        assert!(trunk.allow[1].contains("::1".parse().unwrap()));
        assert_eq!(format!("{:?}", settings.sip_agents[0].password), "***");
    }

    #[test]
    fn mistakes_name_their_key() {
        let cases = [
            ("bogus = 1", "(syntax)"),
            ("sip_listen = \"0.0.0.0:5060\"", "voice.public_address"),
            (
                "sip_listen = \"127.0.0.1:5060\"\nrtp_ports = \"9-3\"",
                "voice.rtp_ports",
            ),
            (
                "sip_listen = \"127.0.0.1:5060\"\n[[trunk]]\nname = \"t\"\nallow = [\"1.2.3.4/40\"]",
                "voice.trunk[0].allow",
            ),
            (
                "sip_listen = \"127.0.0.1:5060\"\n[[trunk]]\nname = \"t\"",
                "voice.trunk[0].allow",
            ),
            (
                "sip_listen = \"127.0.0.1:5060\"\n[[trunk]]\nname = \"t\"\nusername = \"u\"",
                "voice.trunk[0].password",
            ),
            (
                "sip_listen = \"127.0.0.1:5060\"\n[[trunk]]\nname = \"t\"\n[trunk.register]\n\
                 registrar = \"a b\"\nusername = \"u\"\npassword = \"p\"",
                "voice.trunk[0].register.registrar",
            ),
            (
                "sip_listen = \"127.0.0.1:5060\"\n[[trunk]]\nname = \"t\"\n[trunk.register]\n\
                 registrar = \"sip.example\"\nusername = \"u\"\npassword = \"\"",
                "voice.trunk[0].register.password",
            ),
            (
                "sip_listen = \"127.0.0.1:5060\"\n[[trunk]]\nname = \"t\"\n[trunk.register]\n\
                 registrar = \"sip.example\"\nusername = \"u\"\npassword = \"p\"\nexpires = 5",
                "voice.trunk[0].register.expires",
            ),
            (
                "sip_listen = \"127.0.0.1:5060\"\n[[sip_agent]]\nname = \"ghost\"\npassword = \"12345678\"",
                "voice.sip_agent[0].name",
            ),
            (
                "sip_listen = \"127.0.0.1:5060\"\n[[sip_agent]]\nname = \"agent1\"\npassword = \"short\"",
                "voice.sip_agent[0].password",
            ),
        ];
        for (text, key) in cases {
            let error = check(text, &["agent1"]).unwrap_err();
            assert_eq!(error.key, key, "{text}");
        }
    }

    #[test]
    fn a_registration_alone_makes_a_trunk_and_its_registrar_is_read() {
        let settings = check(
            "sip_listen = \"127.0.0.1:5060\"\n\
             [[trunk]]\nname = \"carrier\"\n[trunk.register]\n\
             registrar = \"sip:sip.carrier.example:5070\"\nusername = \"0312345678\"\n\
             password = \"at-the-carrier\"\n\
             [[trunk]]\nname = \"v6\"\n[trunk.register]\nregistrar = \"[2001:db8::1]\"\n\
             username = \"u\"\npassword = \"p\"\ndomain = \"carrier.example\"\nexpires = 600\n",
            &[],
        )
        .unwrap()
        .unwrap();
        let register = settings.trunks[0].register.as_ref().unwrap();
        assert_eq!(register.host, "sip.carrier.example");
        assert_eq!(register.port, 5070);
        assert_eq!(register.domain, "sip.carrier.example");
        assert_eq!(register.expires, 3600);
        assert!(settings.trunks[0].allow.is_empty());
        assert!(!format!("{register:?}").contains("at-the-carrier"));
        let v6 = settings.trunks[1].register.as_ref().unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::1", 5060));
        assert_eq!(v6.domain, "carrier.example");
        assert_eq!(v6.expires, 600);
    }

    /// The demo takes trunk calls from 127.0.0.1 on the port the README names, and has SIP
    /// phones for agent1 and agent2.
    #[test]
    fn the_contact_demo_takes_calls_on_the_port_the_readme_names() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let text = std::fs::read_to_string(examples.join("contact-demo.toml")).unwrap();
        let file = super::super::parse(&text).unwrap();
        let config =
            super::super::Config::from_file(file, &examples, &super::super::Environment::default())
                .unwrap();
        let voice = config.voice.unwrap();
        let readme = include_str!("../../../../README.md");
        assert!(readme.contains(&format!(
            "`{}` (UDP; TCP on the same port)",
            voice.sip_listen
        )));
        assert!(voice.trunks[0].allow[0].contains("127.0.0.1".parse().unwrap()));
        let agents: Vec<&str> = voice
            .sip_agents
            .iter()
            .map(|agent| agent.name.as_str())
            .collect();
        assert_eq!(agents, ["agent1", "agent2"]);
        for agent in &voice.sip_agents {
            assert!(readme.contains(&format!("{} / {}", agent.name, agent.password.expose())));
        }
    }

    /// Every key of `[voice]` is documented in docs/config.md.
    #[test]
    fn every_key_is_in_the_reference() {
        let source = include_str!("voice.rs");
        let reference = include_str!("../../../../docs/config.md");
        let code = source
            .split("/// A password from the config")
            .next()
            .unwrap();
        let mut checked = 0;
        let mut renamed: Option<&str> = None;
        for line in code.lines() {
            if let Some((_, rest)) = line.split_once("rename = \"") {
                renamed = rest.split('"').next();
                continue;
            }
            let Some(rest) = line.trim().strip_prefix("pub ") else {
                continue;
            };
            let Some((field, _)) = rest.split_once(':') else {
                continue;
            };
            let name = renamed.take().unwrap_or(field);
            if name.contains(' ') {
                continue;
            }
            assert!(
                reference.contains(&format!("`{name}`")),
                "docs/config.md does not describe `{name}`"
            );
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} keys found");
    }
}
