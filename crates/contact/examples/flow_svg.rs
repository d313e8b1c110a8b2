//! Prints the seed flow's diagram as SVG (to look at it: `cargo run -p contact --example
//! flow_svg > seed.svg`, then open the file in a browser).

#![allow(clippy::print_stdout)]

fn main() {
    println!(
        "{}",
        contact::diagram::diagram(&contact::flow::seed_flow("support"))
    );
}
