//! The simulated organisation: one Entra tenant (`contoso.com`), two or three AWS accounts,
//! users with homes, devices and cloud access, automation, a partner tenant and the traps.
//!
//! Invariant: benign addresses come from residential/cloud ranges whose first octets are
//! disjoint from every attack range in [`ATTACK_NETS`], and every benign home sits in its own
//! IPv4 /24, so typo failures from different people can never look like one spraying source.

use std::collections::BTreeSet;

use crate::SimConfig;
use crate::rng::Rng;

/// A place Entra can report in `location`.
#[derive(Debug)]
pub(crate) struct Place {
    pub country: &'static str,
    pub state: &'static str,
    pub city: &'static str,
    pub lat: f64,
    pub lon: f64,
    /// UTC offset in minutes (late November: no daylight saving anywhere we simulate).
    pub tz_min: i64,
}

/// A residential or cloud ISP range: `first.second_lo..=second_hi.x.y`.
#[derive(Debug)]
pub(crate) struct Isp {
    pub asn: u32,
    pub first: u8,
    pub second_lo: u8,
    pub second_hi: u8,
}

#[derive(Debug)]
pub(crate) struct Country {
    pub code: &'static str,
    pub weight: u32,
    pub places: &'static [Place],
    pub isps: &'static [Isp],
    pub europe: bool,
}

macro_rules! place {
    ($c:expr, $s:expr, $city:expr, $lat:expr, $lon:expr, $tz:expr) => {
        Place {
            country: $c,
            state: $s,
            city: $city,
            lat: $lat,
            lon: $lon,
            tz_min: $tz,
        }
    };
}

pub(crate) static COUNTRIES: &[Country] = &[
    Country {
        code: "US",
        weight: 45,
        europe: false,
        places: &[
            place!("US", "New York", "New York", 40.7128, -74.0060, -300),
            place!("US", "Illinois", "Chicago", 41.8781, -87.6298, -360),
            place!("US", "Washington", "Seattle", 47.6062, -122.3321, -480),
            place!("US", "Texas", "Austin", 30.2672, -97.7431, -360),
            place!("US", "Massachusetts", "Boston", 42.3601, -71.0589, -300),
            place!("US", "Colorado", "Denver", 39.7392, -104.9903, -420),
        ],
        isps: &[
            Isp {
                asn: 7922,
                first: 73,
                second_lo: 0,
                second_hi: 255,
            },
            Isp {
                asn: 20115,
                first: 24,
                second_lo: 0,
                second_hi: 63,
            },
            Isp {
                asn: 701,
                first: 71,
                second_lo: 96,
                second_hi: 127,
            },
        ],
    },
    Country {
        code: "GB",
        weight: 14,
        europe: true,
        places: &[
            place!("GB", "England", "London", 51.5074, -0.1278, 0),
            place!("GB", "England", "Manchester", 53.4808, -2.2426, 0),
        ],
        isps: &[
            Isp {
                asn: 2856,
                first: 86,
                second_lo: 128,
                second_hi: 191,
            },
            Isp {
                asn: 5089,
                first: 82,
                second_lo: 0,
                second_hi: 47,
            },
        ],
    },
    Country {
        code: "DE",
        weight: 15,
        europe: true,
        places: &[
            place!("DE", "Berlin", "Berlin", 52.5200, 13.4050, 60),
            place!("DE", "Bayern", "Munich", 48.1351, 11.5820, 60),
            place!("DE", "Hessen", "Frankfurt am Main", 50.1109, 8.6821, 60),
            place!("DE", "Hamburg", "Hamburg", 53.5511, 9.9937, 60),
        ],
        isps: &[
            Isp {
                asn: 3320,
                first: 84,
                second_lo: 128,
                second_hi: 191,
            },
            Isp {
                asn: 3320,
                first: 91,
                second_lo: 0,
                second_hi: 63,
            },
        ],
    },
    Country {
        code: "FR",
        weight: 8,
        europe: true,
        places: &[
            place!("FR", "Ile-de-France", "Paris", 48.8566, 2.3522, 60),
            place!("FR", "Auvergne-Rhone-Alpes", "Lyon", 45.7640, 4.8357, 60),
        ],
        isps: &[
            Isp {
                asn: 3215,
                first: 90,
                second_lo: 0,
                second_hi: 127,
            },
            Isp {
                asn: 12322,
                first: 88,
                second_lo: 160,
                second_hi: 191,
            },
        ],
    },
    Country {
        code: "IN",
        weight: 11,
        europe: false,
        places: &[
            place!("IN", "Karnataka", "Bengaluru", 12.9716, 77.5946, 330),
            place!("IN", "Maharashtra", "Pune", 18.5204, 73.8567, 330),
        ],
        isps: &[
            Isp {
                asn: 55836,
                first: 49,
                second_lo: 32,
                second_hi: 47,
            },
            Isp {
                asn: 24560,
                first: 122,
                second_lo: 160,
                second_hi: 191,
            },
        ],
    },
    Country {
        code: "JP",
        weight: 7,
        europe: false,
        places: &[
            place!("JP", "Tokyo", "Tokyo", 35.6762, 139.6503, 540),
            place!("JP", "Osaka", "Osaka", 34.6937, 135.5023, 540),
        ],
        isps: &[
            Isp {
                asn: 17676,
                first: 126,
                second_lo: 0,
                second_hi: 255,
            },
            Isp {
                asn: 2516,
                first: 106,
                second_lo: 128,
                second_hi: 191,
            },
        ],
    },
];

/// Cloud-provider ranges automation runs from (AWS EC2 us-east-1 / eu-west-1).
pub(crate) static CLOUD_ISPS: &[Isp] = &[
    Isp {
        asn: 14618,
        first: 3,
        second_lo: 80,
        second_hi: 95,
    },
    Isp {
        asn: 16509,
        first: 34,
        second_lo: 240,
        second_hi: 255,
    },
];

/// The corporate VPN egress range (documentation range, trusted in `correlate.toml`).
pub(crate) const VPN_CIDR: &str = "198.51.100.0/24";
pub(crate) static VPN_PLACE: Place = place!("US", "Virginia", "Ashburn", 39.0438, -77.4874, -300);
pub(crate) const VPN_ASN: u32 = 62044;

/// One attack network: a /24 prefix and where Entra geolocates it.
#[derive(Debug)]
pub(crate) struct AttackNet {
    pub prefix: &'static str,
    pub asn: u32,
    pub place: Place,
}

/// Attack networks by scenario: password-spray, anonymizer, cross-tenant, aws-recon,
/// spray-to-aws, impossible-travel. First octets never used by benign ranges.
pub(crate) static ATTACK_NETS: [AttackNet; 6] = [
    AttackNet {
        prefix: "193.142.146",
        asn: 49870,
        place: place!("NL", "Noord-Holland", "Amsterdam", 52.3676, 4.9041, 60),
    },
    AttackNet {
        prefix: "185.220.101",
        asn: 208294,
        place: place!("DE", "Berlin", "Berlin", 52.5200, 13.4050, 60),
    },
    AttackNet {
        prefix: "146.70.117",
        asn: 9009,
        place: place!("RO", "Bucuresti", "Bucharest", 44.4268, 26.1025, 120),
    },
    AttackNet {
        prefix: "5.181.235",
        asn: 44477,
        place: place!("NL", "Noord-Holland", "Amsterdam", 52.3676, 4.9041, 60),
    },
    AttackNet {
        prefix: "45.155.205",
        asn: 49505,
        place: place!("RU", "Moscow", "Moscow", 55.7558, 37.6173, 180),
    },
    AttackNet {
        prefix: "103.157.28",
        asn: 131429,
        place: place!(
            "VN",
            "Ho Chi Minh",
            "Ho Chi Minh City",
            10.8231,
            106.6297,
            420
        ),
    },
];

/// A network a person (or attacker) signs in from.
#[derive(Clone, Debug)]
pub(crate) struct Net {
    pub ip: String,
    pub asn: u32,
    pub place: &'static Place,
}

#[derive(Debug)]
pub(crate) struct Device {
    pub os: &'static str,
    pub browser: &'static str,
    pub ua: &'static str,
    pub managed: bool,
    pub trust: &'static str,
}

pub(crate) static DEVICES: &[Device] = &[
    Device {
        os: "Windows10",
        browser: "Edge 131.0.0",
        ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        managed: true,
        trust: "Azure AD joined",
    },
    Device {
        os: "Windows10",
        browser: "Chrome 131.0.0",
        ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        managed: true,
        trust: "Hybrid Azure AD joined",
    },
    Device {
        os: "MacOs",
        browser: "Chrome 131.0.0",
        ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        managed: true,
        trust: "Azure AD registered",
    },
    Device {
        os: "MacOs",
        browser: "Safari 18.1",
        ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        managed: false,
        trust: "",
    },
];

/// An Entra application (client) and the resource it asked a token for.
#[derive(Debug)]
pub(crate) struct App {
    pub id: &'static str,
    pub name: &'static str,
    pub resource_id: &'static str,
    pub resource: &'static str,
}

pub(crate) const APP_OFFICE: App = App {
    id: "4765445b-32c6-49b0-83e6-1d93765276ca",
    name: "OfficeHome",
    resource_id: "00000003-0000-0ff1-ce00-000000000000",
    resource: "Office 365 SharePoint Online",
};
pub(crate) const APP_OUTLOOK: App = App {
    id: "9199bf20-a13f-4107-85dc-02114787ef48",
    name: "One Outlook Web",
    resource_id: "00000002-0000-0ff1-ce00-000000000000",
    resource: "Office 365 Exchange Online",
};
pub(crate) const APP_TEAMS: App = App {
    id: "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
    name: "Microsoft Teams",
    resource_id: "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",
    resource: "Microsoft Teams Services",
};
pub(crate) const APP_OFFICE_DESKTOP: App = App {
    id: "d3590ed6-52b3-4102-aeff-aad2292ab01c",
    name: "Microsoft Office",
    resource_id: "00000003-0000-0000-c000-000000000000",
    resource: "Microsoft Graph",
};
pub(crate) const APP_PORTAL: App = App {
    id: "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
    name: "Azure Portal",
    resource_id: "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    resource: "Windows Azure Service Management API",
};
pub(crate) const APP_AAD_PS: App = App {
    id: "1b730954-1685-4b74-9bfd-dac224a7b894",
    name: "Azure Active Directory PowerShell",
    resource_id: "00000002-0000-0000-c000-000000000000",
    resource: "Windows Azure Active Directory",
};
pub(crate) const APP_EXO_ROPC: App = App {
    id: "00000002-0000-0ff1-ce00-000000000000",
    name: "Office 365 Exchange Online",
    resource_id: "00000002-0000-0ff1-ce00-000000000000",
    resource: "Office 365 Exchange Online",
};
/// The tenant's own enterprise app for AWS IAM Identity Center (its app id is per tenant).
pub(crate) const APP_AWS_SSO: App = App {
    id: "7a1c52e4-3f0b-4d8e-9a61-2c5e8f0b94d7",
    name: "AWS IAM Identity Center (successor to AWS Single Sign-On)",
    resource_id: "7a1c52e4-3f0b-4d8e-9a61-2c5e8f0b94d7",
    resource: "AWS IAM Identity Center (successor to AWS Single Sign-On)",
};

/// An Entra tenant.
#[derive(Clone, Debug)]
pub(crate) struct Tenant {
    pub id: &'static str,
    pub name: &'static str,
    pub domain: &'static str,
}

pub(crate) const HOME: Tenant = Tenant {
    id: "3f1a7c2e-8b4d-4e6a-9c0f-5d2b7e8a1c34",
    name: "Contoso",
    domain: "contoso.com",
};
pub(crate) const PARTNER: Tenant = Tenant {
    id: "b6e2d9a1-47c3-4f58-8e0d-91a3c5f7e264",
    name: "Fabrikam",
    domain: "fabrikam.com",
};
pub(crate) const FOREIGN: Tenant = Tenant {
    id: "e04c8b7f-92d1-4a36-b5e8-7f1d2c6a9b03",
    name: "Northwind Advisory",
    domain: "northwind-advisory.com",
};

pub(crate) const CA_MFA: (&str, &str) = (
    "5e0a7c31-9d24-4b8f-a6e1-3c7f2b9d8a45",
    "CA001: Require MFA for all users",
);
pub(crate) const CA_LEGACY: (&str, &str) = (
    "a8d4f2c9-1b6e-4e37-8c05-9f2a6d3b7e18",
    "CA002: Block legacy authentication (report-only)",
);
pub(crate) const CA_GUEST: (&str, &str) = (
    "c1f7e3a2-6b9d-48c0-9e25-4a8d1f6b3c70",
    "CA003: Guests require terms of use",
);

/// An AWS account.
#[derive(Debug)]
pub(crate) struct Account {
    pub id: &'static str,
    pub alias: &'static str,
    pub region: &'static str,
}

pub(crate) static ACCOUNTS: [Account; 3] = [
    Account {
        id: "493827160541",
        alias: "contoso-prod",
        region: "us-east-1",
    },
    Account {
        id: "738291046502",
        alias: "contoso-dev",
        region: "eu-west-1",
    },
    Account {
        id: "205918364720",
        alias: "contoso-security",
        region: "us-east-1",
    },
];

/// An IAM user with its long-term key.
#[derive(Clone, Debug)]
pub(crate) struct IamUser {
    pub account: usize,
    pub name: String,
    pub principal_id: String,
    pub access_key: String,
    /// The UPN the identities file links it to.
    pub linked_upn: Option<String>,
    pub mfa_device: Option<String>,
}

impl IamUser {
    pub(crate) fn arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:user/{}",
            ACCOUNTS[self.account].id, self.name
        )
    }

    pub(crate) fn account_id(&self) -> &'static str {
        ACCOUNTS[self.account].id
    }

    /// The canonical identity name the correlator uses.
    pub(crate) fn canonical(&self) -> String {
        self.linked_upn.clone().unwrap_or_else(|| self.arn())
    }

    pub(crate) fn new(
        rng: &mut Rng,
        account: usize,
        name: String,
        linked: Option<String>,
        mfa: bool,
    ) -> Self {
        let mfa_device = mfa.then(|| format!("arn:aws:iam::{}:mfa/{}", ACCOUNTS[account].id, name));
        IamUser {
            account,
            principal_id: format!("AIDA{}", rng.base32(17)),
            access_key: format!("AKIA{}", rng.base32(16)),
            name,
            linked_upn: linked,
            mfa_device,
        }
    }
}

/// An IAM Identity Center permission-set role in one account.
#[derive(Clone, Debug)]
pub(crate) struct SsoRole {
    pub account: usize,
    pub name: String,
    pub role_id: String,
}

#[derive(Clone, Debug)]
pub(crate) enum Aws {
    None,
    Sso(SsoRole),
    /// Console user with an MFA device (benign console logins say `MFAUsed: Yes`).
    IamConsole(IamUser),
    /// Developer with a long-term key used from home; console password but no MFA device.
    IamKey(IamUser),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TravelFlag {
    /// First sign-in abroad flagged `unlikelyTravel` (low); also uses AWS via SSO from abroad.
    UnlikelyTravel,
    /// First sign-in abroad flagged `unfamiliarFeatures` (low); no AWS use.
    UnfamiliarFeatures,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Office,
    /// Everything through the corporate VPN (Identity Protection flags it anonymizing).
    Vpn,
    /// Abroad for the whole window.
    Traveller(TravelFlag),
}

#[derive(Debug)]
pub(crate) struct User {
    pub upn: String,
    pub display: String,
    pub user_id: String,
    pub net: Net,
    pub device: &'static Device,
    pub device_id: String,
    pub device_name: String,
    pub kind: Kind,
    pub aws: Aws,
    /// Local minute of the day the working day starts.
    pub work_start_min: i64,
    /// Length of the working day in minutes.
    pub work_len_min: i64,
    pub mfa_method: &'static str,
}

/// A B2B guest from the partner tenant (single-factor, trusted via `partner_tenants`).
#[derive(Debug)]
pub(crate) struct Guest {
    pub upn: String,
    pub display: String,
    pub user_id: String,
    pub net: Net,
    pub device: &'static Device,
}

/// An automation IAM user (listed in `service_accounts`).
#[derive(Debug)]
pub(crate) struct Automation {
    pub user: IamUser,
    pub ip: String,
    pub ua: &'static str,
    pub job: Job,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Job {
    /// Every 30 min: GetCallerIdentity, DescribeVolumes, CreateSnapshot, CreateTags.
    Backup,
    /// Pipeline runs in office hours: GetCallerIdentity, GetObject, UpdateFunctionCode, GetFunction.
    Deploy,
    /// Every 5 min: DescribeInstances, GetMetricData.
    Monitoring,
    /// Every 12 h: a full inventory (recon-looking: ≥ 4 recon calls in seconds).
    Inventory,
}

#[derive(Debug)]
pub(crate) struct World {
    pub accounts: usize,
    pub users: Vec<User>,
    pub guests: Vec<Guest>,
    pub automation: Vec<Automation>,
}

static FIRST: &[&str] = &[
    "james",
    "mary",
    "robert",
    "patricia",
    "john",
    "jennifer",
    "michael",
    "linda",
    "david",
    "elizabeth",
    "william",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "daniel",
    "nancy",
    "matthew",
    "lisa",
    "anthony",
    "betty",
    "mark",
    "sandra",
    "paul",
    "ashley",
    "steven",
    "emily",
    "andrew",
    "donna",
    "kenneth",
    "michelle",
    "joshua",
    "carol",
    "kevin",
    "amanda",
    "lukas",
    "anna",
    "felix",
    "lea",
    "oliver",
    "amelia",
    "hugo",
    "chloe",
    "arjun",
    "priya",
    "rahul",
    "ananya",
    "haruto",
    "yui",
    "sota",
    "hina",
    "noah",
    "emma",
    "liam",
    "olivia",
];

static LAST: &[&str] = &[
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "thompson",
    "white",
    "harris",
    "clark",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "muller",
    "schmidt",
    "schneider",
    "fischer",
    "weber",
    "dubois",
    "moreau",
    "laurent",
    "patel",
    "sharma",
    "iyer",
    "reddy",
    "tanaka",
    "suzuki",
    "sato",
    "watanabe",
    "evans",
    "hughes",
    "wright",
    "green",
    "baker",
    "adams",
    "nelson",
    "hill",
    "campbell",
    "mitchell",
    "roberts",
    "carter",
    "phillips",
    "turner",
];

static MFA_METHODS: &[&str] = &[
    "Mobile app notification",
    "OATH verification code",
    "FIDO2 security key",
    "Windows Hello for Business",
];
static PERMISSION_SETS: &[&str] = &[
    "AdministratorAccess",
    "PowerUserAccess",
    "ReadOnlyAccess",
    "DeveloperAccess",
    "BillingAccess",
];

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Hands out residential/cloud addresses, one /24 per allocation.
pub(crate) struct IpAlloc {
    used: BTreeSet<(u8, u8, u8)>,
}

impl IpAlloc {
    pub(crate) fn new() -> Self {
        IpAlloc {
            used: BTreeSet::new(),
        }
    }

    pub(crate) fn alloc(&mut self, rng: &mut Rng, isps: &'static [Isp]) -> (String, u32) {
        for _ in 0..10_000 {
            let Some(isp) = rng.pick(isps) else { break };
            let second = rng.range(i64::from(isp.second_lo), i64::from(isp.second_hi) + 1) as u8;
            let third = rng.below(256) as u8;
            if self.used.insert((isp.first, second, third)) {
                let fourth = rng.range(2, 255);
                return (format!("{}.{second}.{third}.{fourth}", isp.first), isp.asn);
            }
        }
        // Unreachable for any sane user count (the ranges hold millions of /24s).
        ("73.0.0.2".to_owned(), 7922)
    }
}

fn pick_country(rng: &mut Rng) -> &'static Country {
    let total: u32 = COUNTRIES.iter().map(|c| c.weight).sum();
    let mut x = rng.below(u64::from(total)) as u32;
    for c in COUNTRIES {
        if x < c.weight {
            return c;
        }
        x -= c.weight;
    }
    &COUNTRIES[0]
}

fn place_net(rng: &mut Rng, alloc: &mut IpAlloc, country: &'static Country) -> Net {
    let place = rng.pick(country.places).unwrap_or(&COUNTRIES[0].places[0]);
    let (ip, asn) = alloc.alloc(rng, country.isps);
    Net { ip, asn, place }
}

// === impl World ===

impl World {
    pub(crate) fn build(cfg: &SimConfig) -> World {
        let mut rng = Rng::derive(cfg.seed, "world");
        let mut alloc = IpAlloc::new();
        let accounts = cfg.accounts.clamp(1, 3);
        let n = cfg.users.max(crate::MIN_USERS);
        let vpn_ips: Vec<String> = (0..4)
            .map(|i| format!("198.51.100.{}", 17 + i * 9))
            .collect();

        let mut seen = BTreeSet::new();
        let mut users = Vec::with_capacity(n);
        for i in 0..n {
            let first = FIRST[rng.index(FIRST.len())];
            let last = LAST[rng.index(LAST.len())];
            let mut local = format!("{first}.{last}");
            let mut k = 2;
            while !seen.insert(local.clone()) {
                local = format!("{first}.{last}{k}");
                k += 1;
            }
            let country = pick_country(&mut rng);
            let net = place_net(&mut rng, &mut alloc, country);
            let device = rng.pick(DEVICES).unwrap_or(&DEVICES[0]);
            let user_id = rng.uuid();
            let device_id = if device.managed {
                rng.uuid()
            } else {
                String::new()
            };
            let device_name = if device.managed {
                format!("CONTOSO-LT-{}", rng.base32(5))
            } else {
                String::new()
            };
            let kind = if i % 13 == 7 { Kind::Vpn } else { Kind::Office };
            users.push(User {
                upn: format!("{local}@{}", HOME.domain),
                display: format!("{} {}", capitalise(first), capitalise(last)),
                user_id,
                net,
                device,
                device_id,
                device_name,
                kind,
                aws: Aws::None,
                work_start_min: 8 * 60 + rng.range(0, 91),
                work_len_min: 8 * 60 + rng.range(0, 121),
                mfa_method: MFA_METHODS[rng.index(MFA_METHODS.len())],
            });
            if let Some(u) = users.last_mut()
                && u.kind == Kind::Vpn
            {
                let ip = vpn_ips[i % vpn_ips.len()].clone();
                u.net = Net {
                    ip,
                    asn: VPN_ASN,
                    place: &VPN_PLACE,
                };
            }
        }

        // Travellers: four office users abroad for the whole window.
        let office: Vec<usize> = (0..n).filter(|&i| users[i].kind == Kind::Office).collect();
        for (j, &i) in office.iter().skip(3).step_by(17).take(4).enumerate() {
            let flag = if j % 2 == 0 {
                TravelFlag::UnlikelyTravel
            } else {
                TravelFlag::UnfamiliarFeatures
            };
            let home = users[i].net.place.country;
            let abroad = COUNTRIES
                .iter()
                .filter(|c| c.code != home)
                .nth(j % 3)
                .unwrap_or(&COUNTRIES[1]);
            users[i].net = place_net(&mut rng, &mut alloc, abroad);
            users[i].kind = Kind::Traveller(flag);
        }

        // AWS access. Roles: IAM console users (MFA), IAM key users (two of them European),
        // then Identity Center for ~30% of everyone else.
        let plain: Vec<usize> = (0..n).filter(|&i| users[i].kind == Kind::Office).collect();
        let european: Vec<usize> = plain
            .iter()
            .copied()
            .filter(|&i| {
                COUNTRIES
                    .iter()
                    .any(|c| c.europe && c.code == users[i].net.place.country)
            })
            .collect();
        let mut key_users: Vec<usize> = european.iter().rev().take(2).copied().collect();
        for &i in plain.iter().rev() {
            if key_users.len() >= 6 {
                break;
            }
            if !key_users.contains(&i) {
                key_users.push(i);
            }
        }
        for (j, &i) in key_users.iter().enumerate() {
            let name = users[i]
                .upn
                .split('@')
                .next()
                .unwrap_or("dev")
                .replace('.', "-");
            let upn = users[i].upn.clone();
            users[i].aws =
                Aws::IamKey(IamUser::new(&mut rng, j % accounts, name, Some(upn), false));
        }
        let mut console = 0;
        for &i in plain.iter().skip(1).step_by(11) {
            if console >= 3 {
                break;
            }
            if matches!(users[i].aws, Aws::None) {
                let name = users[i].upn.split('@').next().unwrap_or("admin").to_owned();
                let upn = users[i].upn.clone();
                users[i].aws = Aws::IamConsole(IamUser::new(
                    &mut rng,
                    console % accounts,
                    name,
                    Some(upn),
                    true,
                ));
                console += 1;
            }
        }
        let mut roles: Vec<SsoRole> = Vec::new();
        for a in 0..accounts {
            for ps in PERMISSION_SETS {
                roles.push(SsoRole {
                    account: a,
                    name: format!("AWSReservedSSO_{ps}_{}", rng.hex(16)),
                    role_id: format!("AROA{}", rng.base32(17)),
                });
            }
        }
        for u in users.iter_mut() {
            let eligible = matches!(u.aws, Aws::None)
                && !matches!(u.kind, Kind::Traveller(TravelFlag::UnfamiliarFeatures));
            let wants =
                matches!(u.kind, Kind::Traveller(TravelFlag::UnlikelyTravel)) || rng.chance(0.3);
            if eligible
                && wants
                && let Some(role) = rng.pick(&roles)
            {
                u.aws = Aws::Sso(role.clone());
            }
        }

        let mut guests = Vec::new();
        for _ in 0..(n / 25).clamp(3, 40) {
            let first = FIRST[rng.index(FIRST.len())];
            let last = LAST[rng.index(LAST.len())];
            let country = if rng.chance(0.5) {
                &COUNTRIES[0]
            } else {
                &COUNTRIES[2]
            };
            guests.push(Guest {
                upn: format!("{first}.{last}@{}", PARTNER.domain),
                display: format!("{} {} (Fabrikam)", capitalise(first), capitalise(last)),
                user_id: rng.uuid(),
                net: place_net(&mut rng, &mut alloc, country),
                device: rng.pick(DEVICES).unwrap_or(&DEVICES[0]),
            });
        }
        guests.sort_by(|a, b| a.upn.cmp(&b.upn));
        guests.dedup_by(|a, b| a.upn == b.upn);

        let jobs: [(&str, Job, &str); 4] = [
            (
                "svc-backup",
                Job::Backup,
                "Boto3/1.35.68 md/Botocore#1.35.68 ua/2.0 os/linux#6.1.115-126.197.amzn2023.x86_64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.68",
            ),
            (
                "ci-deploy",
                Job::Deploy,
                "aws-cli/2.22.4 md/awscrt#0.23.1 ua/2.0 os/linux#6.8.0-1017-azure md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython exec-env/GitHubActions cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 md/prompt#off md/command#lambda.update-function-code",
            ),
            (
                "svc-monitoring",
                Job::Monitoring,
                "aws-sdk-go/1.55.5 (go1.22.9; linux; amd64)",
            ),
            (
                "svc-inventory",
                Job::Inventory,
                "Boto3/1.35.68 md/Botocore#1.35.68 ua/2.0 os/linux#6.1.115-126.197.amzn2023.x86_64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.68",
            ),
        ];
        let mut automation = Vec::new();
        for a in 0..accounts {
            for (name, job, ua) in jobs {
                if a > 0 && job == Job::Deploy {
                    continue;
                }
                let user = IamUser::new(&mut rng, a, name.to_owned(), None, false);
                let (ip, _) = alloc.alloc(&mut rng, CLOUD_ISPS);
                automation.push(Automation { user, ip, ua, job });
            }
        }

        World {
            accounts,
            users,
            guests,
            automation,
        }
    }

    /// IAM users linked to a UPN (for the identities file).
    pub(crate) fn linked_iam_users(&self) -> impl Iterator<Item = (&User, &IamUser)> {
        self.users.iter().filter_map(|u| match &u.aws {
            Aws::IamConsole(iam) | Aws::IamKey(iam) => Some((u, iam)),
            _ => None,
        })
    }
}
