pub fn double(x: i64) -> i64 {
    x + x + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles() {
        assert_eq!(double(2), 4);
    }

    #[test]
    fn runs() {
        let _ = double(1);
    }
}
