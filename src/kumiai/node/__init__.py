"""The member's node: the house where the data, the key and the authority live.

Everything a node does for the consortium is here: its home (key, data, agreements,
revocations, admitted jobs, witnessed heads, spend logs), the guard that admits a job
document against its own agreement, the ClientApp and its mods, the work on its own rows,
and the port through which the coordinator reaches it. The coordinator's services never
touch a node home except through `kumiai.node.port`.
"""
