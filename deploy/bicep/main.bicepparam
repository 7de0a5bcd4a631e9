// Example parameters for main.bicep. Copy, fill in, and deploy (deploy/README.md):
//   az deployment group create -g <rg> -p deploy/bicep/main.bicepparam
// The clientState secret is read from the environment, never committed; keep the value, the
// worker and `subscribe` must share it:
//   export TPE_CLIENT_STATE="$(openssl rand -base64 32)"
using 'main.bicep'

param namePrefix = 'tpe'
param image = 'myregistry.azurecr.io/tpe-provisioner:1.0.0'
param registryServer = 'myregistry.azurecr.io'

param acsName = 'my-acs'
param acsRoleDefinitionId = 'b24988ac-6180-42a0-ab88-20f7382dd24c'

param clientIds = [
  '11111111-2222-3333-4444-555555555555'
]
param clientState = readEnvironmentVariable('TPE_CLIENT_STATE', '')
param scopeGroups = []
param allowGuests = false
param manageResourceAccounts = false
param dryRun = true

param queueName = 'tpe-notifications'
param lockDuration = 'PT2M'
param minReplicas = 1
param maxReplicas = 5

param partnerTopicName = 'tpe-graph-users'
param deployEventSubscription = false
param deployRenewalJob = true
param deployResyncJob = true
