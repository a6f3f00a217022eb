"""Real kubeadm and a real control plane, run from what the program writes.

`program_output` runs the Pulumi program under the SDK's mocks and reads back what it would
hand to the world (each machine's Ignition, the token Secrets, the admin kubeconfig, the core
release); `kubeadm` runs the real kubeadm inside a scratch root laid out as a machine's;
`static_pods` turns the static Pod manifests kubeadm writes into local processes; `cluster`
starts and stops them; `kwok` plays the machines' kubelets.
"""
