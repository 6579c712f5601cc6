//! Local sources: the process environment, a directory of one file per key, a dotenv file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shipgate_core::{Environment, Secret};
use shipgate_env::DotenvFile;

use crate::{Lookup, SecretSource};

/// The process environment (runtime injection, seed 002's default). The caller passes a
/// snapshot: this crate never reads the environment itself. Empty values are unset.
#[derive(Debug)]
pub struct EnvSource {
    name: String,
    values: BTreeMap<String, Secret>,
}

impl EnvSource {
    /// A source over a snapshot of variables.
    pub fn new(name: &str, vars: &BTreeMap<String, String>) -> EnvSource {
        EnvSource {
            name: name.to_owned(),
            values: vars
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
                .collect(),
        }
    }
}

#[async_trait::async_trait]
impl SecretSource for EnvSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "env"
    }

    async fn lookup<'a>(&'a self, key: &'a str, field: Option<&'a str>) -> Lookup {
        match self.values.get(field.unwrap_or(key)) {
            Some(value) => Lookup::Found(value.clone()),
            None => Lookup::Missing,
        }
    }
}

/// A directory with one file per key (`/run/secrets`, a mounted Kubernetes Secret volume).
///
/// The file's content is the value, with **one** trailing line break (`\n` or `\r\n`) removed:
/// `echo token > /run/secrets/X` and editors add one, and no secret ends in a line break. Any
/// other whitespace is kept. A key whose file is a directory, unreadable or not UTF-8 is a
/// failure, not a missing key.
#[derive(Debug)]
pub struct DirSource {
    name: String,
    dir: PathBuf,
}

impl DirSource {
    /// A source over `dir`.
    pub fn new(name: &str, dir: &Path) -> DirSource {
        DirSource {
            name: name.to_owned(),
            dir: dir.to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl SecretSource for DirSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "dir"
    }

    async fn lookup<'a>(&'a self, key: &'a str, field: Option<&'a str>) -> Lookup {
        let file_name = field.unwrap_or(key);
        if file_name.contains('/') || file_name.contains('\\') || file_name.starts_with('.') {
            return Lookup::Failed(format!("`{file_name}` is not a plain file name"));
        }
        let path = self.dir.join(file_name);
        match tokio::fs::metadata(&path).await {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Lookup::Missing,
            Err(err) => return Lookup::Failed(format!("cannot read {}: {err}", path.display())),
            Ok(meta) if meta.is_dir() => {
                return Lookup::Failed(format!("{} is a directory, not a file", path.display()));
            }
            Ok(_) => {}
        }
        match tokio::fs::read(&path).await {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(mut text) => {
                    if text.ends_with("\r\n") {
                        text.truncate(text.len() - 2);
                    } else if text.ends_with('\n') {
                        text.truncate(text.len() - 1);
                    }
                    Lookup::Found(Secret::new(text))
                }
                Err(_) => Lookup::Failed(format!("{} is not UTF-8 text", path.display())),
            },
            Err(err) => Lookup::Failed(format!("cannot read {}: {err}", path.display())),
        }
    }
}

/// A dotenv file, for development-like environments only.
#[derive(Debug)]
pub struct DotenvSource {
    name: String,
    values: BTreeMap<String, Secret>,
}

/// Why a dotenv source cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DotenvSourceError {
    /// Production-like environments take secrets injected at run time only (seed 002).
    #[error("refusing dotenv file {} in production-like environment {environment}: production secrets are injected at run time, never read from .env files", path.display())]
    ProductionLike {
        /// The file.
        path: PathBuf,
        /// The environment's name.
        environment: String,
    },
    /// The file could not be read or parsed (the message names a line, never a value).
    #[error(transparent)]
    Read(#[from] shipgate_env::DotenvError),
}

impl DotenvSource {
    /// Reads `path`, unless `environment` is production-like.
    pub fn open(
        name: &str,
        path: &Path,
        environment: &Environment,
    ) -> Result<DotenvSource, DotenvSourceError> {
        if environment.kind().is_prod_like() {
            return Err(DotenvSourceError::ProductionLike {
                path: path.to_owned(),
                environment: environment.name().unwrap_or("(unset)").to_owned(),
            });
        }
        let file = DotenvFile::read(path)?;
        Ok(DotenvSource {
            name: name.to_owned(),
            values: file
                .entries
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k, Secret::new(v)))
                .collect(),
        })
    }
}

#[async_trait::async_trait]
impl SecretSource for DotenvSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "dotenv"
    }

    async fn lookup<'a>(&'a self, key: &'a str, field: Option<&'a str>) -> Lookup {
        match self.values.get(field.unwrap_or(key)) {
            Some(value) => Lookup::Found(value.clone()),
            None => Lookup::Missing,
        }
    }
}
