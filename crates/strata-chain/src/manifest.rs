//! The chain file, `strata.toml`: its schema (serde, unknown keys rejected), and the checks that
//! follow parsing: names, owners, duplicates, pins, and the files it names.
//!
//! Every error is one line, ``strata.toml:LINE:COL: field `image[2].owner`: unknown team "ops"``,
//! located with the spans toml keeps for each value.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{ChainError, LineIndex, Location};
use crate::git::{GitCheckouts, GitContext, NoGit};
use crate::names;
use strata_oci::Squash;

/// A parsed and checked `strata.toml`. Paths are joined to the chain file's directory.
#[derive(Debug, Clone)]
pub struct ChainFile {
    /// The chain file.
    pub path: PathBuf,
    /// Its directory: every relative path in it is relative to this.
    pub dir: PathBuf,
    /// The chain's name, the prefix of its images' names (`acme` → `acme/corebuild`).
    pub name: String,
    /// The registry the chain's images are pushed to, e.g. `registry.example.com:5000`.
    pub registry: Option<String>,
    /// Whether every image's provenance must be signed by its owner's key (`strata build` fails an image whose owner team has no signing key).
    pub require_signatures: bool,
    /// The teams, by name.
    pub teams: BTreeMap<String, Team>,
    /// The images, in file order.
    pub images: Vec<Image>,
    /// Owners of other projects' images (`[owners]`): a repository with its registry
    /// (`registry.acme.example/ops/corebuild`) or a prefix rule (`registry.acme.example/ops/*`)
    /// → the team (of `[teams]`) that must have signed them. `strata verify` follows an image
    /// down into such upstreams and judges each by its rule's team.
    pub owners: BTreeMap<String, String>,
}

/// A team that owns images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// The team's name (its key under `[teams]`).
    pub name: String,
    /// What the team does.
    pub description: Option<String>,
    /// Who to ask: an address or a channel.
    pub contact: Option<String>,
    /// The team's public key files, trusted to verify its images' provenance.
    pub keys: Vec<PathBuf>,
}

/// One `[[image]]`.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image's name in the chain: one OCI path component (`httpd-php`).
    pub name: String,
    /// The owning team.
    pub owner: String,
    /// A free label for the tier (`base`, `corebuild`, `middleware`, `application`).
    pub tier: Option<String>,
    /// How the image is made.
    pub build: Build,
    /// Build arguments (`--build-arg`), applied to the Dockerfile's ARGs.
    pub args: BTreeMap<String, String>,
    /// Extra tags besides `latest`.
    pub tags: Vec<String>,
    /// A structure-test file run after the build; a failure keeps the image from `latest` and stops the images above it.
    pub test: Option<PathBuf>,
    /// How many layers the image keeps.
    pub squash: Squash,
    /// The target platform, `os/arch[/variant]` (default: the build machine's).
    pub platform: Option<String>,
    /// Where `[[image]]`'s `name` is written in `strata.toml`.
    pub declared_at: Location,
    /// The git context the image is built from (`context = { git = ..., rev = ... }`), with the
    /// commit it resolved to; `build`'s context and Dockerfile are then in its checkout.
    pub git: Option<GitContext>,
}

/// How an image is made: from a Dockerfile, or bought (a root filesystem tarball or a pinned image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Build {
    /// Built from `dockerfile` with `context` as the build context.
    Dockerfile {
        /// The build context directory.
        context: PathBuf,
        /// The Dockerfile (default `<context>/Dockerfile`).
        dockerfile: PathBuf,
    },
    /// `source = { rootfs = "base.tar" }`: a root filesystem tarball imported as a one-layer image.
    Rootfs {
        /// The tarball.
        path: PathBuf,
    },
    /// `source = { image = "reg/name:tag@sha256:..." }`: an external image, pinned by digest.
    Image {
        /// The pinned reference.
        reference: String,
        /// `signed_by = "vendor.gpg"`: the vendor signature the image must carry before it is
        /// imported (none: the pin alone is trusted).
        signed_by: Option<SignedBy>,
    },
}

/// A bought image's required vendor signature: `source = { image = "...", signed_by = "KEY" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBy {
    /// The vendor's public key file.
    pub key: PathBuf,
    /// Which kind of signature the key verifies, and where it is found.
    pub kind: SignatureKind,
}

/// The two vendor signature formats strata checks, told apart by the key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureKind {
    /// An OpenPGP key (armored or binary): containers/image "simple signing" signatures (what
    /// `skopeo --sign-by` makes), read from a lookaside store (`sigstore = "DIR or URL"`).
    SimpleSigning {
        /// The lookaside store holding `NAME@sha256=HEX/signature-N`.
        sigstore: Lookaside,
    },
    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`, cosign's key pair): a cosign signature, the
    /// tag `sha256-HEX.sig` in the image's own repository.
    Cosign,
}

/// Where simple-signing signatures are kept: a directory or a web server, laid out as
/// containers/image's lookaside ("sigstore") is: `BASE/NAME@sha256=HEX/signature-1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookaside {
    /// A local directory (`sigstore = "sigs"`, relative to strata.toml, or `file:///...`).
    Dir(PathBuf),
    /// An `http://` or `https://` base URL.
    Url(String),
}

impl ChainFile {
    /// Parse and check `text`, the chain file at `path`. Checks that files it names exist. A git
    /// context is refused ([`NoGit`]): use [`ChainFile::parse_with`] to fetch it.
    pub fn parse(path: &Path, text: &str) -> Result<ChainFile, ChainError> {
        ChainFile::parse_with(path, text, &mut NoGit)
    }

    /// Parse and check `text`, the chain file at `path`, checking out git contexts with `git`.
    pub fn parse_with(
        path: &Path,
        text: &str,
        git: &mut dyn GitCheckouts,
    ) -> Result<ChainFile, ChainError> {
        let raw: RawChain = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Checker {
            path,
            lines: LineIndex::new(text),
            dir: &dir,
        }
        .check(raw, git)
    }

    /// `path` relative to the chain file's directory when it is inside it (for display).
    pub fn relative<'p>(&self, path: &'p Path) -> &'p Path {
        if self.dir.as_os_str().is_empty() {
            return path;
        }
        path.strip_prefix(&self.dir).unwrap_or(path)
    }

    /// The image named `name`.
    pub fn image(&self, name: &str) -> Option<&Image> {
        self.images.iter().find(|i| i.name == name)
    }
}

// ---- the schema, as written ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    name: Spanned<String>,
    registry: Option<Spanned<String>>,
    #[serde(default)]
    require_signatures: bool,
    #[serde(default)]
    teams: BTreeMap<Spanned<String>, RawTeam>,
    #[serde(default)]
    image: Vec<Spanned<RawImage>>,
    #[serde(default)]
    owners: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    description: Option<String>,
    contact: Option<String>,
    #[serde(default)]
    keys: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    name: Spanned<String>,
    owner: Spanned<String>,
    tier: Option<String>,
    context: Option<Spanned<toml::Value>>,
    dockerfile: Option<Spanned<String>>,
    source: Option<Spanned<RawSource>>,
    #[serde(default)]
    args: BTreeMap<String, String>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    test: Option<Spanned<String>>,
    #[serde(default)]
    squash: Squash,
    platform: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    rootfs: Option<Spanned<String>>,
    image: Option<Spanned<String>>,
    signed_by: Option<Spanned<String>>,
    sigstore: Option<Spanned<String>>,
}

// ---- checks after parsing ----

struct Checker<'a> {
    path: &'a Path,
    lines: LineIndex<'a>,
    dir: &'a Path,
}

impl Checker<'_> {
    fn err(
        &self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ChainError {
        ChainError::Field {
            location: self.lines.locate(self.path, span.start),
            field: field.into(),
            message: message.into(),
        }
    }

    fn check(&self, raw: RawChain, git: &mut dyn GitCheckouts) -> Result<ChainFile, ChainError> {
        if !names::is_repository_path(raw.name.get_ref()) {
            return Err(self.err(
                raw.name.span(),
                "name",
                format!(
                    "invalid chain name \"{}\" (lowercase letters and digits, with . _ __ - between them and / between parts)",
                    raw.name.get_ref()
                ),
            ));
        }
        if let Some(registry) = &raw.registry
            && !names::is_registry_host(registry.get_ref())
        {
            return Err(self.err(
                registry.span(),
                "registry",
                format!(
                    "invalid registry host \"{}\" (expected host[:port])",
                    registry.get_ref()
                ),
            ));
        }
        let mut teams = BTreeMap::new();
        for (spanned_name, team) in raw.teams {
            if !names::is_team_name(spanned_name.get_ref()) {
                return Err(self.err(
                    spanned_name.span(),
                    "teams",
                    format!(
                        "invalid team name {:?} (letters, digits, and . _ - between them, at most 64)",
                        spanned_name.get_ref()
                    ),
                ));
            }
            let name = spanned_name.into_inner();
            let mut keys = Vec::new();
            for (i, key) in team.keys.iter().enumerate() {
                let path = self.dir.join(key.get_ref());
                if !path.is_file() {
                    return Err(self.err(
                        key.span(),
                        format!("teams.{name}.keys[{}]", i + 1),
                        format!("no such file {}", path.display()),
                    ));
                }
                keys.push(path);
            }
            teams.insert(
                name.clone(),
                Team {
                    name,
                    description: team.description,
                    contact: team.contact,
                    keys,
                },
            );
        }
        let owners = self.check_owners(&raw.owners, &teams)?;
        let mut images = Vec::with_capacity(raw.image.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, raw_image) in raw.image.into_iter().enumerate() {
            let n = i + 1;
            let image = self.check_image(n, raw_image.into_inner(), &teams, git)?;
            if let Some(first) = seen.insert(image.name.clone(), n) {
                return Err(ChainError::Field {
                    location: image.declared_at,
                    field: format!("image[{n}].name"),
                    message: format!(
                        "duplicate image name \"{}\" (first used by image[{first}])",
                        image.name
                    ),
                });
            }
            images.push(image);
        }
        Ok(ChainFile {
            path: self.path.to_path_buf(),
            dir: self.dir.to_path_buf(),
            name: raw.name.into_inner(),
            registry: raw.registry.map(Spanned::into_inner),
            require_signatures: raw.require_signatures,
            teams,
            images,
            owners,
        })
    }

    /// `[owners]`: each rule names a repository of another registry (or a `/*` prefix of one)
    /// and a declared team.
    fn check_owners(
        &self,
        raw: &BTreeMap<Spanned<String>, Spanned<String>>,
        teams: &BTreeMap<String, Team>,
    ) -> Result<BTreeMap<String, String>, ChainError> {
        let mut owners = BTreeMap::new();
        for (rule, team) in raw {
            let text = rule.get_ref();
            let field = format!("owners.\"{text}\"");
            let valid = match text.strip_suffix("/*") {
                // Everything a registry holds.
                Some(host) if !host.contains('/') => {
                    host != "localhost" && names::is_registry_host(host)
                }
                prefix => {
                    let (domain, path) = strata_reference::split_domain(prefix.unwrap_or(text));
                    domain.is_some_and(|d| d != "localhost" && names::is_registry_host(d))
                        && names::is_repository_path(path)
                }
            };
            if !valid {
                return Err(self.err(
                    rule.span(),
                    field,
                    format!(
                        "invalid owner rule \"{text}\" (a repository of another registry, \
                         HOST/PATH, or a prefix HOST/PATH/*)"
                    ),
                ));
            }
            if !teams.contains_key(team.get_ref()) {
                return Err(self.err(
                    team.span(),
                    field,
                    format!("unknown team \"{}\"", team.get_ref()),
                ));
            }
            owners.insert(text.clone(), team.get_ref().clone());
        }
        Ok(owners)
    }

    fn check_image(
        &self,
        n: usize,
        raw: RawImage,
        teams: &BTreeMap<String, Team>,
        git: &mut dyn GitCheckouts,
    ) -> Result<Image, ChainError> {
        let field = |f: &str| format!("image[{n}].{f}");
        let name = raw.name.get_ref();
        if !names::is_path_component(name) {
            return Err(self.err(
                raw.name.span(),
                field("name"),
                format!("invalid image name \"{name}\" (lowercase letters and digits, with . _ __ - between them)"),
            ));
        }
        let owner = raw.owner.get_ref();
        if !teams.contains_key(owner) {
            let known: Vec<&str> = teams.keys().map(String::as_str).collect();
            let hint = if known.is_empty() {
                "no [teams.<name>] is declared".to_string()
            } else {
                format!("teams: {}", known.join(", "))
            };
            return Err(self.err(
                raw.owner.span(),
                field("owner"),
                format!("unknown team \"{owner}\" ({hint})"),
            ));
        }
        let mut git_context = None;
        let build = match (&raw.context, &raw.source) {
            (Some(_), Some(source)) => {
                return Err(self.err(
                    source.span(),
                    field("source"),
                    "an image has either a context (built) or a source (bought), not both",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    raw.name.span(),
                    field("context"),
                    format!(
                        "image \"{name}\" needs a context directory, or a source for a bought image"
                    ),
                ));
            }
            (Some(context), None) => {
                // A git context's paths are relative to its directory in the checkout.
                let (base, context_path) = match context.get_ref() {
                    toml::Value::String(dir) => (self.dir.to_path_buf(), self.dir.join(dir)),
                    toml::Value::Table(table) => {
                        let (found, root) = self.check_git(n, context, table, git)?;
                        let path = root.join(&found.dir);
                        git_context = Some(found);
                        (path.clone(), path)
                    }
                    _ => {
                        return Err(self.err(
                            context.span(),
                            field("context"),
                            "a context is a directory (\"dir\") or a git repository \
                             ({ git = \"URL\", rev = \"main\", dir = \"sub/dir\" })",
                        ));
                    }
                };
                if !context_path.is_dir() {
                    return Err(self.err(
                        context.span(),
                        field("context"),
                        format!("no such directory {}", context_path.display()),
                    ));
                }
                let dockerfile = match &raw.dockerfile {
                    Some(d) => {
                        if git_context.is_some()
                            && let Err(why) = crate::git::check_dir(d.get_ref())
                        {
                            return Err(self.err(d.span(), field("dockerfile"), why));
                        }
                        let p = base.join(d.get_ref());
                        if !p.is_file() {
                            return Err(self.err(
                                d.span(),
                                field("dockerfile"),
                                format!("no such file {}", p.display()),
                            ));
                        }
                        p
                    }
                    None => {
                        let p = context_path.join("Dockerfile");
                        if !p.is_file() {
                            return Err(self.err(
                                context.span(),
                                field("context"),
                                format!(
                                    "no Dockerfile in {} (add one, or set dockerfile = \"...\")",
                                    context_path.display()
                                ),
                            ));
                        }
                        p
                    }
                };
                Build::Dockerfile {
                    context: context_path,
                    dockerfile,
                }
            }
            (None, Some(source)) => {
                if let Some(d) = &raw.dockerfile {
                    return Err(self.err(
                        d.span(),
                        field("dockerfile"),
                        "a bought image (source) has no Dockerfile",
                    ));
                }
                self.check_source(n, source)?
            }
        };
        let mut tags = Vec::new();
        for (t, tag) in raw.tags.iter().enumerate() {
            if !names::is_tag(tag.get_ref()) {
                return Err(self.err(
                    tag.span(),
                    format!("image[{n}].tags[{}]", t + 1),
                    format!("invalid tag \"{}\" (letters, digits, _ . -, at most 128, not starting with . or -)", tag.get_ref()),
                ));
            }
            tags.push(tag.get_ref().clone());
        }
        let test = match &raw.test {
            Some(t) => {
                let p = self.dir.join(t.get_ref());
                if !p.is_file() {
                    return Err(self.err(
                        t.span(),
                        field("test"),
                        format!("no such file {}", p.display()),
                    ));
                }
                Some(p)
            }
            None => None,
        };
        if let Some(platform) = &raw.platform {
            let parts: Vec<&str> = platform.get_ref().split('/').collect();
            let ok = (2..=3).contains(&parts.len())
                && parts.iter().all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
                });
            if !ok {
                return Err(self.err(
                    platform.span(),
                    field("platform"),
                    format!(
                        "invalid platform \"{}\" (expected os/arch[/variant], e.g. linux/amd64)",
                        platform.get_ref()
                    ),
                ));
            }
        }
        Ok(Image {
            declared_at: self.lines.locate(self.path, raw.name.span().start),
            name: raw.name.into_inner(),
            owner: raw.owner.into_inner(),
            tier: raw.tier,
            build,
            args: raw.args,
            git: git_context,
            tags,
            test,
            squash: raw.squash,
            platform: raw.platform.map(Spanned::into_inner),
        })
    }

    /// `context = { git = "URL", rev = "main", dir = "sub" }`: checked, resolved and checked out;
    /// the context and the checkout's root.
    fn check_git(
        &self,
        n: usize,
        context: &Spanned<toml::Value>,
        table: &toml::Table,
        git: &mut dyn GitCheckouts,
    ) -> Result<(GitContext, PathBuf), ChainError> {
        let field = format!("image[{n}].context");
        let err = |message: String| self.err(context.span(), field.clone(), message);
        let mut url = None;
        let mut rev = None;
        let mut dir = None;
        for (key, value) in table {
            let slot = match key.as_str() {
                "git" => &mut url,
                "rev" => &mut rev,
                "dir" => &mut dir,
                other => {
                    return Err(err(format!(
                        "unknown field `{other}`, expected one of `git`, `rev`, `dir`"
                    )));
                }
            };
            let toml::Value::String(text) = value else {
                return Err(err(format!("`{key}` must be a string")));
            };
            *slot = Some(text.clone());
        }
        let url = url.ok_or_else(|| err("a git context needs `git = \"URL\"`".into()))?;
        let rev = rev
            .ok_or_else(|| err("a git context needs `rev` (a branch, a tag or a commit)".into()))?;
        let dir = crate::git::check_dir(dir.as_deref().unwrap_or("."))
            .map_err(|why| err(format!("dir: {why}")))?;
        let git_err = |source| ChainError::Git {
            location: self.lines.locate(self.path, context.span().start),
            field: field.clone(),
            source: Box::new(source),
        };
        crate::git::check_url(&url).map_err(git_err)?;
        crate::git::check_rev(&rev).map_err(git_err)?;
        let checkout = git.checkout(&url, &rev).map_err(git_err)?;
        // `dir` must be a real directory of the checkout: no symlink on the way out of it.
        let mut at = checkout.root.clone();
        for part in dir.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(err(format!(
                        "dir: {} is not a directory of {url} at {} (a symlink or a file)",
                        dir.display(),
                        checkout.commit
                    )));
                }
                Err(_) => {
                    return Err(err(format!(
                        "dir: {url} at {} has no directory {}",
                        checkout.commit,
                        dir.display()
                    )));
                }
            }
        }
        Ok((
            GitContext {
                url,
                rev,
                dir,
                commit: checkout.commit,
            },
            checkout.root,
        ))
    }

    fn check_source(&self, n: usize, source: &Spanned<RawSource>) -> Result<Build, ChainError> {
        let raw = source.get_ref();
        match (&raw.rootfs, &raw.image) {
            (Some(rootfs), None) => {
                if let Some(field) = raw.signed_by.as_ref().or(raw.sigstore.as_ref()) {
                    return Err(self.err(
                        field.span(),
                        format!("image[{n}].source"),
                        "signed_by and sigstore are for a bought image = \"...\", not a rootfs tarball",
                    ));
                }
                let p = self.dir.join(rootfs.get_ref());
                if !p.is_file() {
                    return Err(self.err(
                        rootfs.span(),
                        format!("image[{n}].source.rootfs"),
                        format!("no such file {}", p.display()),
                    ));
                }
                Ok(Build::Rootfs { path: p })
            }
            (None, Some(image)) => {
                names::check_pinned(image.get_ref()).map_err(|m| {
                    self.err(image.span(), format!("image[{n}].source.image"), m.to_string())
                })?;
                Ok(Build::Image {
                    reference: image.get_ref().clone(),
                    signed_by: self.check_signed_by(n, raw)?,
                })
            }
            _ => Err(self.err(
                source.span(),
                format!("image[{n}].source"),
                "a source has exactly one of rootfs = \"file.tar\" or image = \"name:tag@sha256:...\"",
            )),
        }
    }

    /// `signed_by` (and `sigstore`) of a bought image: the key file must exist, and its kind
    /// (a PEM public key is cosign's, anything else is taken for OpenPGP and checked when used)
    /// decides where the signature is looked for.
    fn check_signed_by(&self, n: usize, raw: &RawSource) -> Result<Option<SignedBy>, ChainError> {
        let field = |f: &str| format!("image[{n}].source.{f}");
        let Some(key) = &raw.signed_by else {
            if let Some(sigstore) = &raw.sigstore {
                return Err(self.err(
                    sigstore.span(),
                    field("sigstore"),
                    "sigstore without signed_by: name the vendor's key (signed_by = \"vendor.gpg\")",
                ));
            }
            return Ok(None);
        };
        let path = self.dir.join(key.get_ref());
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) => {
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    "no such file".to_string()
                } else {
                    format!("cannot read ({e})")
                };
                return Err(self.err(
                    key.span(),
                    field("signed_by"),
                    format!("{why} {}", path.display()),
                ));
            }
        };
        let is_pem_public_key =
            String::from_utf8_lossy(&text).contains("-----BEGIN PUBLIC KEY-----");
        let kind = match (&raw.sigstore, is_pem_public_key) {
            (Some(sigstore), false) => SignatureKind::SimpleSigning {
                sigstore: self.lookaside(sigstore.get_ref()),
            },
            (None, false) => {
                return Err(self.err(
                    key.span(),
                    field("signed_by"),
                    format!(
                        "{} is an OpenPGP key: add sigstore = \"DIR or URL\", where the vendor's simple-signing signatures are",
                        key.get_ref()
                    ),
                ));
            }
            (Some(sigstore), true) => {
                return Err(self.err(
                    sigstore.span(),
                    field("sigstore"),
                    format!(
                        "{} is a cosign public key: its signatures are read from the image's registry, drop sigstore",
                        key.get_ref()
                    ),
                ));
            }
            (None, true) => SignatureKind::Cosign,
        };
        Ok(Some(SignedBy { key: path, kind }))
    }

    fn lookaside(&self, sigstore: &str) -> Lookaside {
        if sigstore.starts_with("http://") || sigstore.starts_with("https://") {
            Lookaside::Url(sigstore.trim_end_matches('/').to_string())
        } else if let Some(path) = sigstore.strip_prefix("file://") {
            Lookaside::Dir(PathBuf::from(path))
        } else {
            Lookaside::Dir(self.dir.join(sigstore))
        }
    }
}

// ---- serde errors: locate them and name the field ----

fn toml_error(path: &Path, text: &str, err: &toml::de::Error) -> ChainError {
    let message = err
        .message()
        .lines()
        .next()
        .unwrap_or("invalid TOML")
        .trim()
        .to_string();
    let Some(span) = err.span() else {
        return ChainError::Syntax {
            location: Location::at_offset(path, text, 0),
            message,
        };
    };
    let location = Location::at_offset(path, text, span.start);
    // toml says only "duplicate key"; the span holds the key (or the table header) as written.
    let message = match text.get(span.clone()).map(str::trim) {
        Some(key) if message == "duplicate key" && !key.is_empty() && !key.contains('\n') => {
            format!("duplicate key `{key}`")
        }
        _ => message,
    };
    if span.start == 0 && (span.is_empty() || span.end >= text.trim_end().len()) {
        // the whole document: a missing top-level field
        return ChainError::Syntax { location, message };
    }
    match DeTable::parse(text)
        .ok()
        .and_then(|t| field_at(t.get_ref(), span.start))
    {
        Some(field) if !field.is_empty() => ChainError::Field {
            location,
            field,
            message,
        },
        _ => ChainError::Syntax { location, message },
    }
}

/// The path of the deepest key or value whose span holds `offset`, e.g. `image[2].args`.
fn field_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
    let mut path = String::new();
    walk_table(table, offset, &mut path).then_some(path)
}

fn walk_table(table: &DeTable<'_>, offset: usize, path: &mut String) -> bool {
    for (key, value) in table {
        let in_key = key.span().contains(&offset);
        let in_value = value.span().contains(&offset)
            || (value.span().is_empty() && value.span().start == offset);
        if in_key || in_value || contains_deep(value.get_ref(), offset) {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key.get_ref());
            if !in_key {
                walk_value(value.get_ref(), offset, path);
            }
            return true;
        }
    }
    false
}

fn walk_value(value: &DeValue<'_>, offset: usize, path: &mut String) {
    match value {
        DeValue::Table(t) => {
            walk_table(t, offset, path);
        }
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                if item.span().contains(&offset) || contains_deep(item.get_ref(), offset) {
                    path.push_str(&format!("[{}]", i + 1));
                    walk_value(item.get_ref(), offset, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

/// Whether any key or value inside `value` holds `offset` (array-of-tables spans cover only headers).
fn contains_deep(value: &DeValue<'_>, offset: usize) -> bool {
    match value {
        DeValue::Table(t) => t.iter().any(|(k, v)| {
            k.span().contains(&offset)
                || v.span().contains(&offset)
                || contains_deep(v.get_ref(), offset)
        }),
        DeValue::Array(a) => a
            .iter()
            .any(|v| v.span().contains(&offset) || contains_deep(v.get_ref(), offset)),
        _ => false,
    }
}
