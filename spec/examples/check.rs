fn main() {
    let dir = std::env::args().nth(1).unwrap_or_default();
    match reconciler_spec::load_dir(std::path::Path::new(&dir)) {
        Ok(spec) => println!("{spec:#?}"),
        Err(e) => println!("{e}"),
    }
}
