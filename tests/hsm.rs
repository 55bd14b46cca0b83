//! The PKCS#11 token against real SoftHSM: signing per algorithm, sealing, key policy,
//! concurrency and recovery when sessions are closed or the login is dropped behind the
//! pool's back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{TestToken, isolated, text};
use hsm_acme::ca::verify::verify_signature;
use hsm_acme::hsm::{KeyType, Pkcs11Token, RsaPadding, Sealer, Signer, TokenError};

fn sign_and_verify(token: &Pkcs11Token, key_type: KeyType, padding: RsaPadding) {
    let label = format!("{key_type}-{padding:?}");
    token.generate_key_pair(&label, key_type).unwrap();
    let signer = token.signer(&label, padding).unwrap();
    assert_eq!(signer.key_type(), key_type);
    let message = format!("to be signed by {label}");
    let signature = signer.sign(message.as_bytes()).unwrap();
    verify_signature(
        signer.public_key(),
        &signer.algorithm(),
        message.as_bytes(),
        &signature,
    )
    .unwrap_or_else(|e| panic!("{label}: {e}"));
    // A different message must not verify: the check above is not vacuous.
    assert!(
        verify_signature(
            signer.public_key(),
            &signer.algorithm(),
            b"other",
            &signature
        )
        .is_err()
    );
    if matches!(key_type, KeyType::EcdsaP256 | KeyType::EcdsaP384) {
        let raw = signer.sign_raw(message.as_bytes()).unwrap();
        let half = if key_type == KeyType::EcdsaP256 {
            32
        } else {
            48
        };
        assert_eq!(raw.len(), 2 * half, "JWS form is raw r||s");
    }
}

#[test]
fn ecdsa_and_ed25519_sign_and_verify_in_software() {
    isolated("ecdsa_and_ed25519_sign_and_verify_in_software", |t| {
        let token = t.open(2);
        for key_type in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Ed25519] {
            sign_and_verify(&token, key_type, RsaPadding::Pkcs1);
        }
    });
}

#[test]
fn rsa_pkcs1_and_pss_sign_and_verify_in_software() {
    isolated("rsa_pkcs1_and_pss_sign_and_verify_in_software", |t| {
        let token = t.open(2);
        for key_type in [KeyType::Rsa2048, KeyType::Rsa3072, KeyType::Rsa4096] {
            for padding in [RsaPadding::Pkcs1, RsaPadding::Pss] {
                sign_and_verify(&token, key_type, padding);
            }
        }
    });
}

#[test]
fn generated_keys_are_sensitive_never_extractable_and_labels_unique() {
    isolated(
        "generated_keys_are_sensitive_never_extractable_and_labels_unique",
        |t| {
            let token = t.open(1);
            token.generate_key_pair("ca", KeyType::EcdsaP256).unwrap();
            token.generate_sealing_key("seal").unwrap();
            for (label, secret) in [("ca", false), ("seal", true)] {
                let report = token.inspect(label, secret).unwrap();
                let value = |name: &str| {
                    report
                        .attributes
                        .iter()
                        .find(|a| a.name == name)
                        .and_then(|a| a.value)
                };
                assert_eq!(value("CKA_SENSITIVE"), Some(true), "{label}");
                assert_eq!(value("CKA_EXTRACTABLE"), Some(false), "{label}");
                assert_eq!(value("CKA_ALWAYS_SENSITIVE"), Some(true), "{label}");
                assert_eq!(value("CKA_NEVER_EXTRACTABLE"), Some(true), "{label}");
                assert_eq!(value("CKA_MODIFIABLE"), Some(false), "{label}");
                assert!(report.refusals.is_empty(), "{label}: {:?}", report.refusals);
            }
            let err = token
                .generate_key_pair("ca", KeyType::EcdsaP384)
                .unwrap_err();
            assert!(err.to_string().contains("already exists"), "{err}");
            let err = token.signer("missing", RsaPadding::Pkcs1).unwrap_err();
            assert!(matches!(err, TokenError::KeyNotFound { .. }), "{err}");
        },
    );
}

#[test]
fn extractable_key_made_with_pkcs11_tool_is_refused_by_name_and_attribute() {
    isolated(
        "extractable_key_made_with_pkcs11_tool_is_refused_by_name_and_attribute",
        |t| {
            t.pkcs11_tool(&[
                "--keypairgen",
                "--key-type",
                "EC:prime256v1",
                "--label",
                "exportable",
                "--id",
                "0a0b",
                "--extractable",
            ]);
            let token = t.open(1);
            let err = token.signer("exportable", RsaPadding::Pkcs1).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, TokenError::KeyRefused { .. }), "{message}");
            assert!(message.contains("\"exportable\""), "{message}");
            assert!(message.contains("CKA_EXTRACTABLE is true"), "{message}");
        },
    );
}

#[test]
fn seal_round_trip_and_tampering_or_wrong_aad_fail() {
    isolated("seal_round_trip_and_tampering_or_wrong_aad_fail", |t| {
        let token = t.open(2);
        token.generate_sealing_key("seal").unwrap();
        let sealer = token.sealer("seal").unwrap();
        let secret = b"an EAB MAC key of thirty-two b.";
        let aad = b"eab:kid-1";
        let sealed = sealer.seal(secret, aad).unwrap();
        assert_eq!(sealed.iv.len(), 12);
        assert_eq!(sealed.ciphertext.len(), secret.len() + 16);
        assert!(
            !sealed
                .ciphertext
                .windows(8)
                .any(|w| secret.windows(8).any(|s| s == w))
        );
        assert_eq!(sealer.unseal(&sealed, aad).unwrap().as_slice(), secret);
        // Fresh IV per seal.
        assert_ne!(sealer.seal(secret, aad).unwrap().iv, sealed.iv);

        let fails = |s: &hsm_acme::hsm::Sealed, aad: &[u8]| {
            matches!(sealer.unseal(s, aad), Err(TokenError::UnsealFailed))
        };
        assert!(fails(&sealed, b"eab:kid-2"), "wrong associated data");
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(fails(&tampered, aad), "flipped ciphertext bit");
        let mut tampered = sealed.clone();
        let last = tampered.ciphertext.len() - 1;
        tampered.ciphertext[last] ^= 0x80;
        assert!(fails(&tampered, aad), "flipped tag bit");
        let mut tampered = sealed.clone();
        tampered.iv[3] ^= 1;
        assert!(fails(&tampered, aad), "changed IV");
        let mut tampered = sealed.clone();
        tampered.ciphertext.truncate(10);
        assert!(fails(&tampered, aad), "truncated");
        // Debug output never shows the sealed bytes.
        assert!(!format!("{sealed:?}").contains(&format!("{:?}", sealed.ciphertext)));
    });
}

#[test]
fn wrong_pin_is_reported_once_and_clearly() {
    isolated("wrong_pin_is_reported_once_and_clearly", |t| {
        let wrong = t.dir.join("wrong-pin");
        std::fs::write(&wrong, "not-the-pin\n").unwrap();
        std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let mut settings = t.settings(2);
        settings.pin_file = Some(wrong.display().to_string());
        let started = std::time::Instant::now();
        let err = Pkcs11Token::open(&settings).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, TokenError::PinRefused { .. }), "{message}");
        assert!(
            message.contains("refused the PIN") && message.contains("PinIncorrect"),
            "{message}"
        );
        assert!(message.contains("not retrying"), "{message}");
        // No retry loop with back-off happened.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // The PIN itself never appears in the message.
        assert!(!message.contains("not-the-pin"));
        // The right PIN still works: the token was not locked by retries.
        let token = t.open(1);
        token
            .generate_key_pair("after", KeyType::EcdsaP256)
            .unwrap();
    });
}

#[test]
fn eight_threads_sign_at_once_through_four_sessions() {
    isolated("eight_threads_sign_at_once_through_four_sessions", |t| {
        let token = t.open(4);
        token.generate_key_pair("busy", KeyType::EcdsaP256).unwrap();
        let signer = Arc::new(token.signer("busy", RsaPadding::Pkcs1).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let signer = Arc::clone(&signer);
                std::thread::spawn(move || {
                    for n in 0..100 {
                        let message = format!("thread {i} message {n}");
                        let sig = signer.sign(message.as_bytes()).unwrap();
                        verify_signature(
                            signer.public_key(),
                            &signer.algorithm(),
                            message.as_bytes(),
                            &sig,
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    });
}

/// Calls a function of the SoftHSM module through a second handle to the same library,
/// the way another component of the process (or a fault) could.
#[allow(unsafe_code)]
fn call_behind_the_pools_back(symbol: &[u8], slot: Option<u64>) -> u64 {
    let module = TestToken::module();
    // SAFETY: the symbols are PKCS#11 v2.40 entry points with the declared signatures;
    // the library stays loaded (the pool holds it) for the duration of the call.
    unsafe {
        let lib = libloading::Library::new(module).unwrap();
        match slot {
            Some(slot) => {
                let f: libloading::Symbol<'_, unsafe extern "C" fn(u64) -> u64> =
                    lib.get(symbol).unwrap();
                f(slot)
            }
            None => {
                let f: libloading::Symbol<'_, unsafe extern "C" fn(*mut u8) -> u64> =
                    lib.get(symbol).unwrap();
                f(std::ptr::null_mut())
            }
        }
    }
}

#[test]
fn signing_recovers_after_all_sessions_are_closed_behind_the_pools_back() {
    isolated(
        "signing_recovers_after_all_sessions_are_closed_behind_the_pools_back",
        |t| {
            let token = t.open(3);
            token.generate_key_pair("k", KeyType::EcdsaP256).unwrap();
            let signer = token.signer("k", RsaPadding::Pkcs1).unwrap();
            let check = |round: &str| {
                let sig = signer
                    .sign(round.as_bytes())
                    .unwrap_or_else(|e| panic!("{round}: {e}"));
                verify_signature(
                    signer.public_key(),
                    &signer.algorithm(),
                    round.as_bytes(),
                    &sig,
                )
                .unwrap();
            };
            check("before");
            // C_CloseAllSessions: every session gone, the login with them, every handle stale.
            let rv = call_behind_the_pools_back(b"C_CloseAllSessions", Some(token.slot().id()));
            assert_eq!(rv, 0, "C_CloseAllSessions returned {rv:#x}");
            check("after C_CloseAllSessions");
            check("and again");
            // A logout from another session of the process drops the login and the handles.
            let ctx = token.module_context();
            let other = ctx.open_rw_session(token.slot()).unwrap();
            other.logout().unwrap();
            drop(other);
            check("after C_Logout");
            // C_Finalize: the module forgets everything; the pool initialises it again.
            let rv = call_behind_the_pools_back(b"C_Finalize", None);
            assert_eq!(rv, 0, "C_Finalize returned {rv:#x}");
            check("after C_Finalize");
        },
    );
}

#[test]
fn a_pin_refused_when_logging_in_again_is_never_tried_again() {
    isolated(
        "a_pin_refused_when_logging_in_again_is_never_tried_again",
        |t| {
            use cryptoki::session::UserType;
            use cryptoki::types::AuthPin;

            let token = t.open(2);
            token.generate_key_pair("k", KeyType::EcdsaP256).unwrap();
            let signer = token.signer("k", RsaPadding::Pkcs1).unwrap();
            signer.sign(b"before").unwrap();
            let (old, new) = (AuthPin::from(t.user_pin()), AuthPin::from("changed-pin-42"));
            // Behind the pool's back: the PIN changes and the login goes.
            let ctx = token.module_context();
            let other = ctx.open_rw_session(token.slot()).unwrap();
            other.set_pin(&old, &new).unwrap();
            other.logout().unwrap();
            let err = signer.sign(b"refused").unwrap_err();
            assert!(matches!(err, TokenError::PinRefused { .. }), "{err}");
            // The PIN is right again. A pool that kept logging in would now get in; each
            // attempt would also have run down the token's PIN retry counter.
            other.login(UserType::User, Some(&new)).unwrap();
            other.set_pin(&new, &old).unwrap();
            other.logout().unwrap();
            let err = signer.sign(b"still refused").unwrap_err();
            assert!(matches!(err, TokenError::PinRefused { .. }), "{err}");
        },
    );
}

#[test]
fn keep_alive_keeps_healthy_sessions_and_rebuilds_lost_ones() {
    isolated(
        "keep_alive_keeps_healthy_sessions_and_rebuilds_lost_ones",
        |t| {
            let token = t.open(3);
            token.generate_key_pair("k", KeyType::EcdsaP256).unwrap();
            let signer = Arc::new(token.signer("k", RsaPadding::Pkcs1).unwrap());
            // Three threads at once leave three idle sessions behind.
            let threads: Vec<_> = (0..3)
                .map(|_| {
                    let signer = Arc::clone(&signer);
                    std::thread::spawn(move || signer.sign(b"warm").unwrap())
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(token.keepalive().unwrap(), 0, "healthy sessions are kept");
            // Every session closed behind the pool's back: keep-alive notices and recovers.
            let rv = call_behind_the_pools_back(b"C_CloseAllSessions", Some(token.slot().id()));
            assert_eq!(rv, 0, "C_CloseAllSessions returned {rv:#x}");
            token.keepalive().unwrap();
            signer.sign(b"after keep-alive").unwrap();
            assert_eq!(token.keepalive().unwrap(), 0);
            // The shipped profiles that ask for it, get it.
            assert_eq!(
                token.keepalive_interval(),
                None,
                "SoftHSM needs no keep-alive"
            );
        },
    );
}

#[test]
fn unknown_token_names_the_tokens_present() {
    isolated("unknown_token_names_the_tokens_present", |t| {
        let mut settings = t.settings(1);
        settings.selector.label = Some("no-such-token".into());
        let err = Pkcs11Token::open(&settings).unwrap_err().to_string();
        assert!(
            err.contains("no-such-token") && err.contains(common::TOKEN_LABEL),
            "{err}"
        );
        let _ = text;
    });
}

#[test]
fn a_token_absent_at_start_is_named_clearly_or_waited_for_when_configured() {
    isolated(
        "a_token_absent_at_start_is_named_clearly_or_waited_for_when_configured",
        |t| {
            let plug_back = t.unplug();

            // Without a wait: at once, a clear error naming what was looked for.
            let started = std::time::Instant::now();
            let Err(err) = Pkcs11Token::open(&t.settings(2)) else {
                panic!("opened a token that is not there");
            };
            let err = err.to_string();
            assert!(err.contains(common::TOKEN_LABEL), "{err}");
            assert!(started.elapsed() < std::time::Duration::from_secs(2));

            // With a wait that runs out: the same error, after the wait.
            let mut settings = t.settings(2);
            settings.wait_for_token = std::time::Duration::from_secs(3);
            let started = std::time::Instant::now();
            let Err(err) = Pkcs11Token::open(&settings) else {
                panic!("opened a token that is not there");
            };
            assert!(err.to_string().contains(common::TOKEN_LABEL), "{err}");
            assert!(started.elapsed() >= std::time::Duration::from_secs(2));

            // The token comes back while start-up waits: the module, initialised again,
            // finds it, and the token signs.
            let back = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(3));
                plug_back();
            });
            settings.wait_for_token = std::time::Duration::from_secs(30);
            let started = std::time::Instant::now();
            let token = Pkcs11Token::open(&settings).unwrap();
            assert!(started.elapsed() >= std::time::Duration::from_secs(3));
            back.join().unwrap();
            token.generate_key_pair("back", KeyType::EcdsaP256).unwrap();
            let signer = token.signer("back", RsaPadding::Pkcs1).unwrap();
            let sig = signer.sign(b"back").unwrap();
            verify_signature(signer.public_key(), &signer.algorithm(), b"back", &sig).unwrap();
        },
    );
}

#[test]
fn with_recovery_reinitialize_a_device_loss_is_survived_and_the_module_looks_afresh() {
    // SoftHSM reports no device errors, so the loss here is a C_Finalize behind the pool's
    // back; which loss leads to a new C_Initialize is the unit test of `pool::module_step`.
    isolated(
        "with_recovery_reinitialize_a_device_loss_is_survived_and_the_module_looks_afresh",
        |t| {
            let mut settings = t.settings(2);
            settings.profile.sessions.recovery = hsm_acme::hsm::profile::Recovery::Reinitialize;
            let token = Pkcs11Token::open(&settings).unwrap();
            token.generate_key_pair("k", KeyType::EcdsaP256).unwrap();
            let signer = token.signer("k", RsaPadding::Pkcs1).unwrap();
            signer.sign(b"before").unwrap();
            // A second token appears in the module's directory: a module lists the tokens it
            // found when initialised, so the pool cannot see it yet.
            let listed = |token: &Pkcs11Token| -> Vec<String> {
                let ctx = token.module_context();
                ctx.get_slots_with_token()
                    .unwrap()
                    .into_iter()
                    .map(|slot| {
                        ctx.get_token_info(slot)
                            .unwrap()
                            .label()
                            .trim_end()
                            .to_owned()
                    })
                    .collect()
            };
            let out = Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", "late-token"])
                .args(["--so-pin", "late-so-pin-1234", "--pin", "late-user-1234"])
                .env("SOFTHSM2_CONF", t.conf())
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out));
            assert!(!listed(&token).contains(&"late-token".to_owned()));
            // The device is lost (here: C_Finalize behind the pool's back); recovery finalizes
            // and initialises the module, which then lists the new token too.
            let rv = call_behind_the_pools_back(b"C_Finalize", None);
            assert_eq!(rv, 0, "C_Finalize returned {rv:#x}");
            let sig = signer.sign(b"after").unwrap();
            verify_signature(signer.public_key(), &signer.algorithm(), b"after", &sig).unwrap();
            assert!(listed(&token).contains(&"late-token".to_owned()));
        },
    );
}
