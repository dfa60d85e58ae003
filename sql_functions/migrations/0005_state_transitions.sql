-- 0005_state_transitions: placeholder, being written in this session.
SELECT 1;
