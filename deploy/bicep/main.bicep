// tpe-provisioner on Azure Container Apps.
//
// Deploys, into the target resource group: a Service Bus namespace and queue that Graph change
// notifications reach through the Microsoft Graph Event Grid partner topic, user-assigned
// managed identities with the least roles the worker and its scaler need, a Log Analytics
// workspace, a Container Apps environment and the worker as a Container App that KEDA scales on
// the queue length, plus (optionally) a daily Container Apps job running `subscribe`.
//
// The Azure Communication Services resource already exists; this template only grants the
// worker's identity a role on it. Read deploy/README.md for the order of steps: the partner
// topic only exists after `tpe-provisioner subscribe` has created the Graph subscription, so the
// event subscription is deployed in a second pass (deployEventSubscription = true).

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Where and what
// ---------------------------------------------------------------------------------------------

@description('Azure region for every resource created here. Defaults to the resource group\'s region.')
param location string = resourceGroup().location

@description('Short prefix for resource names: lowercase letters, digits and hyphens (Container Apps names are lowercase). The Service Bus namespace name must be globally unique, so a unique suffix is added to it.')
@minLength(3)
@maxLength(20)
param namePrefix string = 'tpe'

@description('Container image of tpe-provisioner, e.g. myregistry.azurecr.io/tpe-provisioner:1.0.0 (built from the repository Dockerfile).')
param image string

@description('Login server of a private registry holding the image (e.g. myregistry.azurecr.io), pulled with the worker identity; that identity needs AcrPull on the registry. Empty for a public image.')
param registryServer string = ''

@description('Tags applied to every resource.')
param tags object = {}

// ---------------------------------------------------------------------------------------------
// Azure Communication Services
// ---------------------------------------------------------------------------------------------

@description('Name of the existing Azure Communication Services resource whose Teams Phone extensibility assignments are managed. Its Azure subscription must be enabled for the API, or every call fails with 403 SubscriptionNotAllowed.')
param acsName string

@description('Resource group of the ACS resource. Defaults to this resource group.')
param acsResourceGroup string = resourceGroup().name

@description('Role definition id (GUID) granted to the worker identity on the ACS resource so it can read, write and delete teamsExtension assignments with Entra ID auth. Defaults to the built-in Contributor (b24988ac-6180-42a0-ab88-20f7382dd24c); pass a custom role id to narrow it.')
param acsRoleDefinitionId string = 'b24988ac-6180-42a0-ab88-20f7382dd24c'

@description('teamsExtension assignments API version (ACS_API_VERSION).')
param acsApiVersion string = '2025-06-30'

@description('Wire name sent for resource accounts (ACS_RESOURCE_ACCOUNT_TYPE): teamsResourceAccount as in the docs, or resourceAccount as in the OpenAPI enum.')
@allowed([
  'teamsResourceAccount'
  'resourceAccount'
])
param acsResourceAccountType string = 'teamsResourceAccount'

// ---------------------------------------------------------------------------------------------
// Directory and policy
// ---------------------------------------------------------------------------------------------

@description('Microsoft Entra tenant id (TPE_TENANT_ID). Notifications naming another tenant are rejected as untrusted.')
param tenantId string = subscription().tenantId

@description('Entra app client ids granted to eligible Teams users (TPE_CLIENT_IDS). The worker adds and removes only these ids.')
@minLength(1)
param clientIds array

@description('Secret Graph subscription clientState (TPE_CLIENT_STATE); notifications that do not carry it are dead-lettered. Generate one, e.g. `openssl rand -base64 32`. Stored as a Container Apps secret.')
@secure()
@minLength(16)
param clientState string

@description('Group ids whose transitive members are in scope (TPE_SCOPE_GROUPS). Empty = the whole tenant.')
param scopeGroups array = []

@description('Make guests (userType Guest) eligible (TPE_ALLOW_GUESTS).')
param allowGuests bool = false

@description('Allow deleting resource-account assignments (TPE_MANAGE_RESOURCE_ACCOUNTS); otherwise they are only created.')
param manageResourceAccounts bool = false

@description('Backfill and resync also walk Teams users outside the scope groups, so leavers whose group notification was lost lose access (TPE_SWEEP_OUT_OF_SCOPE; one ACS read per Teams user of the tenant). false: such a leaver keeps access until a later notification about them.')
param sweepOutOfScope bool = true

@description('Decide and log, never write to ACS (TPE_DRY_RUN). Start with true and read the logs.')
param dryRun bool = true

@description('Microsoft Graph base URL (GRAPH_ENDPOINT). Change only for a national cloud.')
param graphEndpoint string = 'https://graph.microsoft.com'

// ---------------------------------------------------------------------------------------------
// Worker tuning
// ---------------------------------------------------------------------------------------------

@description('Reconciles in flight per replica (TPE_CONCURRENCY).')
@minValue(1)
@maxValue(1024)
param concurrency int = 16

@description('Bound on one message\'s work (TPE_MESSAGE_TIMEOUT), a Go duration.')
param messageTimeout string = '2m'

@description('Scheduled full reconcile inside every replica of `run` (TPE_RESYNC_INTERVAL), a Go duration; 0 = off. Used only when deployResyncJob is false: the job resyncs once for all replicas, and `run` then gets 0.')
param resyncInterval string = '24h'

@description('Brake: refuse a resync/backfill plan with more revokes than this (TPE_MAX_REVOKES).')
@minValue(0)
param maxRevokes int = 100

@description('Brake: refuse (apply nothing of) a resync/backfill plan of 3 or more revokes that revokes more than this percent of assigned principals (TPE_MAX_REVOKE_PERCENT), a number from 0 to 100 such as 0.5; 0 = off.')
param maxRevokePercent string = '10'

@description('Log level (TPE_LOG_LEVEL).')
@allowed([
  'debug'
  'info'
  'warn'
  'error'
])
param logLevel string = 'info'

// ---------------------------------------------------------------------------------------------
// Queue and scaling
// ---------------------------------------------------------------------------------------------

@description('Service Bus queue name (SERVICEBUS_QUEUE).')
param queueName string = 'tpe-notifications'

@description('Peek-lock duration of the queue, ISO 8601, between PT1M and PT5M. The worker renews locks while it works.')
@allowed([
  'PT1M'
  'PT2M'
  'PT3M'
  'PT4M'
  'PT5M'
])
param lockDuration string = 'PT2M'

@description('Minimum replicas: 1 keeps one warm worker; 0 scales to zero when the queue is empty. The resync and renewal jobs run either way; without them (deployResyncJob or deployRenewalJob false) keep 1, since the replicas then do those duties.')
@allowed([
  0
  1
])
param minReplicas int = 1

@description('Maximum replicas KEDA may scale to (one replica per 5 active messages).')
@minValue(1)
@maxValue(30)
param maxReplicas int = 5

// ---------------------------------------------------------------------------------------------
// Graph notifications through Event Grid
// ---------------------------------------------------------------------------------------------

@description('Name of the Graph partner topic in this resource group; the same name goes into TPE_EVENT_GRID, and Graph creates the topic when `subscribe` first runs.')
param partnerTopicName string = '${namePrefix}-graph-users'

@description('Create the partner-topic event subscription to the queue. Set true on the second deployment, after `subscribe` created the partner topic and it was activated.')
param deployEventSubscription bool = false

@description('Deploy a Container Apps job that runs `subscribe` daily (creates or renews the Graph subscriptions) once for all replicas; `run` then renews nothing itself (TPE_RENEW_SUBSCRIPTIONS false). False: every replica renews.')
param deployRenewalJob bool = true

@description('Cron schedule (UTC) of the renewal job.')
param renewalSchedule string = '17 3 * * *'

@description('Deploy a Container Apps job that runs `backfill --enqueue` on resyncSchedule: the scheduled resync, once for all replicas, which share its reconcile commands through the queue; `run` then does not resync itself (TPE_RESYNC_INTERVAL 0). False: every replica resyncs every resyncInterval.')
param deployResyncJob bool = true

@description('Cron schedule (UTC) of the resync job.')
param resyncSchedule string = '47 2 * * *'

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

var suffix = uniqueString(resourceGroup().id, namePrefix)
var serviceBusNamespaceName = '${namePrefix}-sb-${suffix}'

resource workerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${namePrefix}-worker'
  location: location
  tags: tags
}

// KEDA reads the queue's runtime properties through the management API, which needs the
// Manage right (Azure Service Bus Data Owner). That right is kept off the worker identity.
resource scalerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${namePrefix}-scaler'
  location: location
  tags: tags
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    location: location
    tags: tags
    namespaceName: serviceBusNamespaceName
    queueName: queueName
    lockDuration: lockDuration
    workerPrincipalId: workerIdentity.properties.principalId
    scalerPrincipalId: scalerIdentity.properties.principalId
  }
}

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: acsName
  scope: resourceGroup(acsResourceGroup)
}

module acsRole 'modules/acsrole.bicep' = {
  name: 'acs-role'
  scope: resourceGroup(acsResourceGroup)
  params: {
    acsName: acsName
    principalId: workerIdentity.properties.principalId
    roleDefinitionId: acsRoleDefinitionId
  }
}

module eventSubscription 'modules/eventsubscription.bicep' = if (deployEventSubscription) {
  name: 'graph-event-subscription'
  params: {
    partnerTopicName: partnerTopicName
    queueId: serviceBus.outputs.queueId
  }
}

var eventGridTarget = 'azuresubscriptionid=${subscription().subscriptionId}&resourcegroup=${resourceGroup().name}&partnertopic=${partnerTopicName}&location=${location}'

// The worker's environment, shared by the app and the jobs. Names are the binary's settings
// (see the root README's configuration table). TPE_RESYNC_INTERVAL and TPE_RENEW_SUBSCRIPTIONS
// are read by `run` only: with the jobs deployed the replicas leave those duties to them.
var workerEnv = [
  { name: 'AZURE_CLIENT_ID', value: workerIdentity.properties.clientId }
  { name: 'ACS_ENDPOINT', value: 'https://${acs.properties.hostName}' }
  { name: 'ACS_API_VERSION', value: acsApiVersion }
  { name: 'ACS_RESOURCE_ACCOUNT_TYPE', value: acsResourceAccountType }
  { name: 'GRAPH_ENDPOINT', value: graphEndpoint }
  { name: 'TPE_TENANT_ID', value: tenantId }
  { name: 'TPE_CLIENT_IDS', value: join(clientIds, ',') }
  { name: 'TPE_CLIENT_STATE', secretRef: 'client-state' }
  { name: 'TPE_SCOPE_GROUPS', value: join(scopeGroups, ',') }
  { name: 'TPE_ALLOW_GUESTS', value: allowGuests ? 'true' : 'false' }
  { name: 'TPE_MANAGE_RESOURCE_ACCOUNTS', value: manageResourceAccounts ? 'true' : 'false' }
  { name: 'TPE_SWEEP_OUT_OF_SCOPE', value: sweepOutOfScope ? 'true' : 'false' }
  { name: 'TPE_DRY_RUN', value: dryRun ? 'true' : 'false' }
  { name: 'TPE_CONCURRENCY', value: string(concurrency) }
  { name: 'TPE_MESSAGE_TIMEOUT', value: messageTimeout }
  { name: 'TPE_SHUTDOWN_TIMEOUT', value: '30s' }
  { name: 'TPE_HTTP_LISTEN', value: ':8080' }
  { name: 'TPE_RESYNC_INTERVAL', value: deployResyncJob ? '0' : resyncInterval }
  { name: 'TPE_RENEW_SUBSCRIPTIONS', value: deployRenewalJob ? 'false' : 'true' }
  { name: 'TPE_MAX_REVOKES', value: string(maxRevokes) }
  { name: 'TPE_MAX_REVOKE_PERCENT', value: maxRevokePercent }
  { name: 'TPE_LOG_LEVEL', value: logLevel }
  { name: 'TPE_LOG_FORMAT', value: 'json' }
  { name: 'SERVICEBUS_NAMESPACE', value: serviceBus.outputs.namespaceHost }
  { name: 'SERVICEBUS_QUEUE', value: queueName }
  { name: 'TPE_EVENT_GRID', value: eventGridTarget }
]

module app 'modules/containerapp.bicep' = {
  name: 'containerapp'
  params: {
    location: location
    tags: tags
    namePrefix: namePrefix
    image: image
    registryServer: registryServer
    workerIdentityId: workerIdentity.id
    scalerIdentityId: scalerIdentity.id
    clientState: clientState
    env: workerEnv
    serviceBusNamespaceName: serviceBusNamespaceName
    queueName: queueName
    minReplicas: minReplicas
    maxReplicas: maxReplicas
    deployRenewalJob: deployRenewalJob
    renewalSchedule: renewalSchedule
    deployResyncJob: deployResyncJob
    resyncSchedule: resyncSchedule
  }
  dependsOn: [
    acsRole
  ]
}

@description('Client id of the worker identity: grant it the Graph application permissions (deploy/README.md).')
output workerClientId string = workerIdentity.properties.clientId

@description('Object (principal) id of the worker identity\'s service principal, for the Graph app role assignments.')
output workerPrincipalId string = workerIdentity.properties.principalId

@description('Service Bus namespace host name (SERVICEBUS_NAMESPACE).')
output serviceBusNamespace string = serviceBus.outputs.namespaceHost

@description('The TPE_EVENT_GRID value the app uses to create the Graph subscription.')
output eventGridTarget string = eventGridTarget

@description('Name of the Container App.')
output containerAppName string = app.outputs.appName
