fn main() {
    println!("repave");
}
