"""Delivery: where results reach the user (SPEC "Delivery").

`output` writes a run's answer to a file in the home; `message` composes the text of
a notification; `targets` turns a target's settings into its URL at the moment of
sending; `send` hands a message to Apprise with a bounded wait; `notify` decides
who hears about a run; `state` keeps the last delivery result per target under
.runner/; `heartbeat` pings a healthchecks-style URL while `runner watch` is healthy.
run/ calls in here after a run's record and state are durable, outside any lock
another run waits for; nothing here can change a run's status.
"""
