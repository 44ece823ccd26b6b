fn main() { println!("{}", serde_json::to_string_pretty(&edgeguard_compiler::model::schema()).unwrap_or_default()); }
