//! Embeds every JSON file of `profiles/` into the binary, so `engraft` runs on its bundled
//! profiles and terminology from any working directory.
use std::{env, fs, path::Path};

fn main() {
    // sqlx::migrate! embeds migrations/ at compile time; a new migration file must rebuild.
    println!("cargo:rerun-if-changed=migrations");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("profiles/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n != "package.json")
        .collect();
    names.sort();
    let mut out = String::from("/// Every resource file of `profiles/`, as (file name, JSON text).\npub static BUNDLED: &[(&str, &str)] = &[\n");
    for n in &names {
        println!("cargo:rerun-if-changed={}", dir.join(n).display());
        out.push_str(&format!(
            "    ({n:?}, include_str!({:?})),\n",
            dir.join(n).display().to_string()
        ));
    }
    out.push_str("];\n");
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("bundled_profiles.rs");
    fs::write(dest, out).expect("write bundled_profiles.rs");
}
