//! The social graph: who has whom on their forward list.

/// Each user's contacts, by user index. `mutual` of each user's `k` contacts
/// are neighbours on a ring (so they have each other); the rest are spread
/// by a multiplicative hash and mostly one-way.
pub fn contacts(users: usize, k: usize, mutual: f64) -> Vec<Vec<usize>> {
    let k = k.min(users.saturating_sub(1));
    let mutual_count = ((k as f64 * mutual.clamp(0.0, 1.0)).round() as usize) & !1;
    (0..users)
        .map(|i| {
            let mut c = Vec::with_capacity(k);
            for d in 1..=mutual_count / 2 {
                c.push((i + d) % users);
                c.push((i + users - d % users) % users);
            }
            let mut step = 1usize;
            while c.len() < k {
                // The hash can cycle (a population that is a multiple of the
                // prime); then walk the ring.
                let j = if step <= 4 * users {
                    (i.wrapping_mul(7919).wrapping_add(step.wrapping_mul(104_729))) % users
                } else {
                    (i + step) % users
                };
                step += 1;
                if j != i && !c.contains(&j) {
                    c.push(j);
                }
            }
            c.dedup();
            c
        })
        .collect()
}

/// For each user, who has them on their forward list (their watchers).
pub fn watchers(contacts: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut w = vec![Vec::new(); contacts.len()];
    for (i, cs) in contacts.iter().enumerate() {
        for &c in cs {
            w[c].push(i);
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_user_gets_k_distinct_contacts_and_the_ring_part_is_mutual() {
        let g = contacts(50, 6, 0.5);
        for (i, c) in g.iter().enumerate() {
            assert_eq!(c.len(), 6, "{i}: {c:?}");
            assert!(!c.contains(&i));
            let mut d = c.clone();
            d.sort();
            d.dedup();
            assert_eq!(d.len(), 6);
        }
        // 0.5 of 6 is 3, rounded down to 2 ring neighbours: 1 and 49 for user 0.
        assert!(g[0].contains(&1) && g[1].contains(&0));
        assert!(g[0].contains(&49) && g[49].contains(&0));
        let w = watchers(&g);
        assert_eq!(w.iter().map(Vec::len).sum::<usize>(), 50 * 6);
    }

    #[test]
    fn small_populations_do_not_loop_forever() {
        assert_eq!(contacts(1, 5, 1.0), vec![Vec::<usize>::new()]);
        assert!(contacts(3, 10, 1.0).iter().all(|c| c.len() == 2));
    }
}
