//! Errors in the user's words: an item named as the file names it (`operation[get_cart]`,
//! not `operation[3]`), the range a number must be in, and "did you mean" for a name that
//! is close to one the file defines.

use super::limits::*;

/// `field` (a serde path such as `operation[3].cpu_us`) with each table-array index
/// replaced by the item's own name from `text`, as validation names items.
pub fn named_path(text: &str, field: &str) -> String {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return field.to_string();
    };
    let Some((head, rest)) = field.split_once('[') else {
        return field.to_string();
    };
    let Some((index, tail)) = rest.split_once(']') else {
        return field.to_string();
    };
    let name = index
        .parse::<usize>()
        .ok()
        .and_then(|i| doc.get(head)?.as_array()?.get(i)?.as_table().cloned())
        .and_then(|item| {
            ["name", "op"]
                .iter()
                .find_map(|key| item.get(*key)?.as_str().map(str::to_string))
        });
    match name {
        Some(name) => format!("{head}[{name}]{tail}"),
        None => field.to_string(),
    }
}

/// What a number named `leaf` may be, where the file format bounds it.
pub fn allowed(leaf: &str) -> Option<String> {
    let range = match leaf {
        "cpu_us" => format!("a whole number of µs, 0 to {MAX_CPU_US}"),
        "request_bytes" | "response_bytes" => {
            format!("a whole number of bytes, 0 to {MAX_PAYLOAD_BYTES}")
        }
        "write_bytes" | "value_bytes" => {
            format!("a whole number of bytes, 0 to {MAX_VALUE_BYTES}")
        }
        "count" => format!("a whole number, 1 to {MAX_KEYS}"),
        "weight" => format!("a whole number, 1 to {MAX_WEIGHT_SUM}"),
        "replicas" => format!("a whole number, 1 to {MAX_REPLICAS}"),
        "retries" => format!("a whole number, 0 to {MAX_RETRIES}"),
        "timeout_ms" => format!("a whole number of ms, 1 to {MAX_TIMEOUT_MS}"),
        "rates" => format!("whole numbers of requests per second, 1 to {MAX_RATE}"),
        "duration_s" | "warmup_s" => format!("seconds, up to {MAX_DURATION_S}"),
        _ => return None,
    };
    Some(range)
}

/// `; did you mean "NAME"?` for the candidate closest to `name`, when one is close enough
/// to be a typo (an edit distance of at most a third of its length, and at most 3).
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map_or(String::new(), |(_, c)| format!("; did you mean {c:?}?"))
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_becomes_the_items_name() {
        let text = "[[operation]]\nname = \"a\"\n[[operation]]\nname = \"b\"\ncpu_us = -60\n[[entrypoint]]\nop = \"a\"\n";
        assert_eq!(
            named_path(text, "operation[1].cpu_us"),
            "operation[b].cpu_us"
        );
        assert_eq!(
            named_path(text, "entrypoint[0].weight"),
            "entrypoint[a].weight"
        );
        assert_eq!(
            named_path(text, "operation[9].cpu_us"),
            "operation[9].cpu_us"
        );
        assert_eq!(named_path(text, "load.rates"), "load.rates");
    }

    #[test]
    fn a_near_name_is_suggested_and_a_far_one_is_not() {
        let names = ["get_reviews", "get_cart", "checkout"];
        assert_eq!(
            did_you_mean("get_reveiws", names),
            "; did you mean \"get_reviews\"?"
        );
        assert_eq!(
            did_you_mean("get_crat", names),
            "; did you mean \"get_cart\"?"
        );
        assert_eq!(did_you_mean("payment", names), "");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
