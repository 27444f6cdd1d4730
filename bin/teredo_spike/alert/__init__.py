"""The modular alert teredo_attack_context: payload, ATT&CK context, delivery and spool."""
