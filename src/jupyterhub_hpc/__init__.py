"""JupyterHub in front of a Slurm cluster: the code the hub runs, and the resource rules the preflight shares.

Modules, by concern:

* the resource rules, which the Ansible filter plugin ``filter_plugins/hpc_resources.py`` exposes (a thin adapter):
  ``model`` (the cluster model and a request, frozen), ``units`` (the grammar of values: memory, durations, whole
  numbers, names; ``ResourceError``), ``cluster_rules`` (the inventory's model, deploy time, English messages by
  variable path), ``request_rules`` (a user's request, spawn time, messages in the user's language) and ``apps``
  (the users' applications beside JupyterLab);
* ``spawner``: ``HPCSlurmSpawner`` (entry point ``hpc-slurm`` of ``jupyterhub.spawners``), the job life cycle and
  status polling, with ``form`` (the Server Options form, a pure function), ``accounts`` (the user's Slurm
  accounts) and ``job_board`` (one ``squeue`` for all the hub's jobs);
* ``pam``: ``HPCPAMAuthenticator`` (entry point ``hpc-pam`` of ``jupyterhub.authenticators``);
* ``port_api``: the port callback of a starting server, which takes only the port;
* ``commands``: commands run for users, bounded in time and bytes, with a clean environment;
* ``ledger``: the jobs the hub submitted, until it sees them end;
* ``names``: user names, the site's one rule for the login, the ledger and the sudo rule (standard library only);
* ``job_tail``: a script, not imported: run as the user with the system Python isolated (``-I -S``), it prints
  the end of a job's output (standard library only).

Nothing is imported here: ``python -I -S job_tail.py`` and the filter plugin load only what they use.
"""
